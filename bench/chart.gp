# Chart of a bench/compare.sh run (called by bench/aggregate.py):
#   gnuplot -e "datafile='X.dat'; outfile='X.png'" bench/chart.gp
# Data columns: scenario, delivered/s of starling, mosquitto, mosquitto-nagle, then broker CPU
# microseconds per delivered message in the same order; NaN where a broker was not run.
set terminal pngcairo noenhanced size 1400,900 font "sans,10"
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
set multiplot layout 2,1 title "Starling vs Mosquitto 2.0.11: saturation, broker on one core"
set title "delivered messages per second (higher is better)"
set format y "%.0s%c"
plot datafile using 2:xtic(1) title "Starling" lc rgb "#1f77b4", \
     '' using 3 title "Mosquitto (TCP_NODELAY)" lc rgb "#ff7f0e", \
     '' using 4 title "Mosquitto (Nagle)" lc rgb "#bbbbbb"
set title "broker CPU microseconds per delivered message (lower is better)"
set format y "%g"
plot datafile using 5:xtic(1) title "Starling" lc rgb "#1f77b4", \
     '' using 6 title "Mosquitto (TCP_NODELAY)" lc rgb "#ff7f0e", \
     '' using 7 title "Mosquitto (Nagle)" lc rgb "#bbbbbb"
unset multiplot
