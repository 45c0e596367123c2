# The one-step trained mean's gap, times the width n, to the infinite-width
# prediction (eta Theta y) and to the order-1/n prediction (wick_gd_mean1),
# depth 3 at criticality, eta = 0.1 (tanh) and 0.08 (ReLU), y = 1, one input.
# Data: docs/figures/gd1_gap.dat (columns: act n eta2 se eta3 se gap se gap-pred),
# from `wick gd --order1 ... --json` per width (docs/theory-finite-width.md).
set terminal pngcairo size 1100,460 font ",11"
set output 'docs/figures/gd1_gap.png'
set multiplot layout 1,2
set logscale x 2
set xlabel 'width n'
set ylabel 'n x (measured mean - prediction)'
set key top left
set grid
set xrange [24:1400]
set title 'tanh (C_W = 1), eta = 0.1: order 1/n closes the gap'
set yrange [-0.004:0.012]
plot 'docs/figures/gd1_gap.dat' index 0 u 2:7:8 w yerrorlines lw 2 pt 7 t 'to infinite width', \
     '' index 0 u 2:9:8 w yerrorlines lw 2 pt 5 t 'to the 1/n prediction', \
     0 lc rgb 'black' dt 2 t ''
set title 'ReLU (C_W = 2), eta = 0.08: a kink term growing as sqrt(n) remains'
set yrange [-4.2:0.5]
set key bottom left
plot 'docs/figures/gd1_gap.dat' index 1 u 2:7:8 w yerrorlines lw 2 pt 7 t 'to infinite width', \
     '' index 1 u 2:9:8 w yerrorlines lw 2 pt 5 t 'to the 1/n prediction (R = 0)', \
     -0.106*sqrt(x) lc rgb 'black' lw 1.5 dt 4 t '-0.106 sqrt(n) (fitted eta-odd part)', \
     0 lc rgb 'black' dt 2 t ''
unset multiplot
