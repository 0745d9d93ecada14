# Chart of a bench/compare.sh run (called by bench/aggregate.py):
#   gnuplot -e "datafile='X.dat'; outfile='X.png'; n=3; titles='Starling FlashMQ-1-thread Mosquitto'" bench/chart.gp
# Data columns: scenario, delivered/s of each of the n broker variants (in the order of
# `titles`, one word each), then broker CPU microseconds per delivered message in the same
# order; NaN where a variant has no figure.
set terminal pngcairo noenhanced size 1600,900 font "sans,10"
set output outfile
set datafile missing "NaN"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set rmargin 12
set key top left
set logscale y
set grid ytics
set xtics rotate by -35 scale 0
# One colour per variant, by name: FlashMQ greens, Mosquitto oranges, Nagle variants lighter.
colour(t) = t eq "Starling" ? "#1f77b4" : t eq "FlashMQ-1-thread" ? "#2ca02c" : \
            t eq "FlashMQ-default-threads" ? "#006400" : t eq "FlashMQ-Nagle" ? "#98df8a" : \
            t eq "Mosquitto" ? "#ff7f0e" : t eq "Mosquitto-Nagle" ? "#ffbb78" : "#bbbbbb"
set multiplot layout 2,1 title "Starling vs FlashMQ and Mosquitto: saturation, broker on one core"
set title "delivered messages per second (higher is better)"
set format y "%.0s%c"
plot for [i=1:n] datafile using (column(1+i)):xtic(1) title word(titles, i) \
     lc rgb colour(word(titles, i))
set title "broker CPU microseconds per delivered message (lower is better)"
set format y "%g"
plot for [i=1:n] datafile using (column(1+n+i)):xtic(1) title word(titles, i) \
     lc rgb colour(word(titles, i))
unset multiplot
