package pool

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// header is the first line of a recorded sweep.
const header = "driver\tconns\tqueries\twindow_ms\tp50_us\tp99_us"

// Write records points as tab-separated lines under a header, with a comment
// line first (the machine, the load), so a chart can be drawn again from the
// committed file without a database.
func Write(w io.Writer, comment string, points []Point) error {
	b := bufio.NewWriter(w)
	for _, line := range strings.Split(comment, "\n") {
		fmt.Fprintf(b, "# %s\n", line)
	}
	fmt.Fprintln(b, header)
	for _, p := range points {
		fmt.Fprintf(b, "%s\t%d\t%d\t%d\t%d\t%d\n", p.Driver, p.Conns, p.Queries, p.Window.Milliseconds(), p.P50.Microseconds(), p.P99.Microseconds())
	}
	return b.Flush()
}

// Read parses what Write wrote; comment lines are returned joined.
func Read(r io.Reader) (comment string, points []Point, err error) {
	sc := bufio.NewScanner(r)
	var comments []string
	sawHeader := false
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#"):
			comments = append(comments, strings.TrimSpace(strings.TrimPrefix(line, "#")))
			continue
		case !sawHeader:
			if line != header {
				return "", nil, fmt.Errorf("pool: line %d: want the header %q", n, header)
			}
			sawHeader = true
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 6 {
			return "", nil, fmt.Errorf("pool: line %d: want 6 tab-separated fields, got %d", n, len(f))
		}
		d := Driver(f[0])
		if d != SQL && d != PgxPool {
			return "", nil, fmt.Errorf("pool: line %d: unknown driver %q", n, f[0])
		}
		var v [5]int64
		for i := range v {
			if v[i], err = strconv.ParseInt(f[i+1], 10, 64); err != nil || v[i] < 0 || v[i] > 1<<40 {
				return "", nil, fmt.Errorf("pool: line %d: field %d: want a number from 0 to 2^40, got %q", n, i+2, f[i+1])
			}
		}
		if v[0] < 1 || v[2] < 1 {
			return "", nil, fmt.Errorf("pool: line %d: conns and window_ms must be positive", n)
		}
		points = append(points, Point{Driver: d, Conns: int(v[0]), Queries: v[1], Window: time.Duration(v[2]) * time.Millisecond,
			P50: time.Duration(v[3]) * time.Microsecond, P99: time.Duration(v[4]) * time.Microsecond})
	}
	if err := sc.Err(); err != nil {
		return "", nil, err
	}
	if !sawHeader {
		return "", nil, fmt.Errorf("pool: no header %q", header)
	}
	return strings.Join(comments, "\n"), points, nil
}

// Chart geometry: x is the pool size on a log2 scale, the left y axis
// queries/s, the right y axis p99 in ms.
const (
	chartW, chartH = 900, 480
	plotL, plotR   = 80, 700
	plotT, plotB   = 60, 400
)

// WriteChart draws throughput (solid) and p99 (dashed) by pool size for each
// driver, as SVG. The same points give the same bytes: `go generate` keeps the
// committed chart in step with the committed data.
func WriteChart(w io.Writer, title string, points []Point) error {
	if len(points) == 0 {
		return fmt.Errorf("pool: no points to chart")
	}
	maxConns, maxQPS, maxP99 := 1, 1.0, 0.1
	for _, p := range points {
		maxConns = max(maxConns, p.Conns)
		maxQPS = max(maxQPS, p.QPS())
		maxP99 = max(maxP99, float64(p.P99)/float64(time.Millisecond))
	}
	maxQPS, maxP99 = nice(maxQPS), nice(maxP99)
	xMax := math.Log2(float64(maxConns))
	px := func(conns int) float64 {
		if xMax == 0 {
			return plotL
		}
		return plotL + (plotR-plotL)*math.Log2(float64(conns))/xMax
	}
	pyQ := func(q float64) float64 { return plotB - (plotB-plotT)*q/maxQPS }
	pyL := func(ms float64) float64 { return plotB - (plotB-plotT)*ms/maxP99 }
	b := bufio.NewWriter(w)
	f := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	f(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", chartW, chartH, chartW, chartH)
	f(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	f(`<text x="%d" y="28" font-size="15" font-weight="bold">%s</text>`+"\n", plotL, html.EscapeString(title))
	for c := 1; c <= maxConns; c *= 2 {
		f(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e5e5e5"/>`+"\n", px(c), plotT, px(c), plotB)
		f(`<text x="%.1f" y="%d" text-anchor="middle">%d</text>`+"\n", px(c), plotB+18, c)
	}
	for i := 0; i <= 4; i++ {
		q, l := maxQPS*float64(i)/4, maxP99*float64(i)/4
		f(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e5e5e5"/>`+"\n", plotL, pyQ(q), plotR, pyQ(q))
		f(`<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", plotL-6, pyQ(q)+4, strconv.FormatFloat(q, 'f', -1, 64))
		f(`<text x="%d" y="%.1f">%s ms</text>`+"\n", plotR+6, pyL(l)+4, strconv.FormatFloat(l, 'f', -1, 64))
	}
	f(`<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>`+"\n", plotL, plotT, plotR-plotL, plotB-plotT)
	f(`<text x="%d" y="%d" text-anchor="middle">pool size (MaxOpenConns / MaxConns), log scale</text>`+"\n", (plotL+plotR)/2, plotB+40)
	f(`<text transform="translate(22 %d) rotate(-90)" text-anchor="middle">queries/s (solid)</text>`+"\n", (plotT+plotB)/2)
	f(`<text transform="translate(%d %d) rotate(90)" text-anchor="middle">p99 (dashed)</text>`+"\n", plotR+60, (plotT+plotB)/2)
	colors := map[Driver]string{SQL: "#1f77b4", PgxPool: "#d62728"}
	for i, d := range []Driver{SQL, PgxPool} {
		var q, l []string
		for _, p := range points {
			if p.Driver == d {
				q = append(q, fmt.Sprintf("%.1f,%.1f", px(p.Conns), pyQ(p.QPS())))
				l = append(l, fmt.Sprintf("%.1f,%.1f", px(p.Conns), pyL(float64(p.P99)/float64(time.Millisecond))))
			}
		}
		if len(q) == 0 {
			continue
		}
		f(`<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", colors[d], strings.Join(q, " "))
		f(`<polyline fill="none" stroke="%s" stroke-width="2" stroke-dasharray="6 4" points="%s"/>`+"\n", colors[d], strings.Join(l, " "))
		y := plotT + 10 + 20*i
		f(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", plotL+10, y, plotL+40, y, colors[d])
		f(`<text x="%d" y="%d">%s</text>`+"\n", plotL+46, y+4, html.EscapeString(string(d)))
	}
	f("</svg>\n")
	return b.Flush()
}

// nice rounds v up to 1, 2 or 5 times a power of ten.
func nice(v float64) float64 {
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*e {
			return m * e
		}
	}
	return 10 * e
}
