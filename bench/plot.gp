# SPDX-License-Identifier: BSD-3-Clause
# bench/plot.gp: the chart beside each report (called by bench/report.py).
# Two clustered bar charts: median time and median peak RSS of every
# allocator, relative to the best peer of each case (1 = as good as the
# best peer; lower is better), on a log scale so that 2x slower and 2x
# faster look alike.
# Variables (gnuplot -e): timefile, rssfile, outfile, ncols, subtitle.
set terminal pngcairo size 1500,1100 font ",10"
set output outfile
set multiplot layout 2,1 title "slabkit and its peers: ".subtitle
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y 2
set yrange [0.25:128]
set ytics ("1/4" 0.25, "1/2" 0.5, "1" 1, "2" 2, "4" 4, "8" 8, "16" 16, "32" 32, "64" 64, "128" 128)
set grid ytics
set xtics rotate by -25 scale 0 font ",9"
set key outside top center horizontal
set ylabel "time / fastest peer"
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 2 lc "black" front
plot for [i=2:ncols] timefile using i:xtic(1) title columnheader(i)
set ylabel "peak RSS / smallest peer"
set arrow 1 from graph 0, first 1.1 to graph 1, first 1.1 nohead dt 2 lw 2 lc "black" front
plot for [i=2:ncols] rssfile using i:xtic(1) title columnheader(i)
unset multiplot
