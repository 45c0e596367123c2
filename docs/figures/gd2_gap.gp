# The fully trained mean at a TEST input: its gap, times the width n, to the
# infinite-width prediction (Theta_ba/Theta_aa y) and to the order-1/n
# prediction (wick_gd_mean_test), depth 3 at criticality, one training input,
# G0 = (1, 0.5, 1.5), y = 1; eta = 0.4 (tanh), 0.15 (ReLU).
# Data: docs/figures/gd2_gap.dat from docs/figures/gd2_gap.sh (columns: act n
# pairs n_beyond se n_frozen se n_gap_inf se n_gap_1n se).  The gaps are
# n E[r] (r = z_b less the network's own frozen-NTK trajectory, measured) plus
# the frozen NTK's predicted part; the open points add the frozen part as
# measured (n_beyond + n_frozen, error bar the frozen part's), which is
# 1/sqrt(n) noisy per network.
set terminal pngcairo size 1100,460 font ",11"
set output 'docs/figures/gd2_gap.png'
set multiplot layout 1,2
set logscale x 2
set xlabel 'width n'
set ylabel 'n x (measured mean - prediction)'
set key top left
set grid
set xrange [45:2900]
set title 'tanh (C_W = 1), eta = 0.4, fully trained, test input'
set yrange [-0.5:0.9]
plot 'docs/figures/gd2_gap.dat' index 0 u 2:8:9 w yerrorlines lw 2 pt 7 t 'to infinite width', \
     '' index 0 u 2:10:11 w yerrorlines lw 2 pt 5 t 'to the 1/n prediction', \
     '' index 0 u ($2*1.08):($4+$6):7 w yerrorbars pt 6 lc rgb 'gray50' t 'to infinite width, frozen part measured', \
     0 lc rgb 'black' dt 2 t ''
set title 'ReLU (C_W = 2), eta = 0.15: the kink, not order 1/n'
set yrange [0:9]
set xrange [45:1400]
set key top left
plot 'docs/figures/gd2_gap.dat' index 1 u 2:8:9 w yerrorlines lw 2 pt 7 t 'to infinite width', \
     '' index 1 u 2:10:11 w yerrorlines lw 2 pt 5 t 'to the 1/n prediction (sigma" a delta)', \
     0.248*sqrt(x) lc rgb 'black' lw 1.5 dt 4 t '0.248 sqrt(n) (fitted n E[r])', \
     0 lc rgb 'black' dt 2 t ''
unset multiplot
