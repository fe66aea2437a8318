package measure

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
)

// Curve is one series on a log-log chart.
type Curve struct {
	Label  string
	Color  string       // any SVG colour
	Dash   string       // SVG stroke-dasharray; "" draws a solid line
	Marker string       // "", "circle", "square" or "cross"
	NoLine bool         // markers only
	Points [][2]float64 // (x, y), both > 0
}

// Chart geometry: a log-log plot with the legend on the right.
const (
	chartW, chartH             = 900, 540
	plotL, plotR               = 80, 600
	plotT, plotB               = 50, 470
	xMin, xMax, yMin, yMax     = 1.0, 1000.0, 0.005, 4.0
	legendX, legendY, legendDY = 620, 70, 22
)

func px(x float64) float64 {
	return plotL + (plotR-plotL)*math.Log10(x/xMin)/math.Log10(xMax/xMin)
}

func py(y float64) float64 {
	return plotB - (plotB-plotT)*math.Log10(y/yMin)/math.Log10(yMax/yMin)
}

// WriteChart draws curves as an SVG log-log chart of load std-dev / mean
// (y, as a fraction) against virtual nodes per physical node (x). It needs no
// plotting library: the chart is a few dozen SVG elements.
func WriteChart(w io.Writer, title string, curves []Curve) error {
	b := bufio.NewWriter(w)
	f := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	f(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartW, chartH, chartW, chartH)
	f(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	f(`<text x="%d" y="28" font-size="15" font-weight="bold">%s</text>`+"\n", plotL, html.EscapeString(title))

	// Grid and ticks.
	for d := 1.0; d <= xMax; d *= 10 {
		for _, m := range []float64{1, 2, 5} {
			x := d * m
			if x > xMax {
				break
			}
			f(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e5e5e5"/>`+"\n", px(x), plotT, px(x), plotB)
			f(`<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px(x), plotB+18, strconv.FormatFloat(x, 'f', -1, 64))
		}
	}
	for _, y := range []float64{0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 4} {
		f(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e5e5e5"/>`+"\n", plotL, py(y), plotR, py(y))
		f(`<text x="%d" y="%.1f" text-anchor="end">%s%%</text>`+"\n", plotL-6, py(y)+4, strconv.FormatFloat(100*y, 'f', -1, 64))
	}
	f(`<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>`+"\n", plotL, plotT, plotR-plotL, plotB-plotT)
	f(`<text x="%d" y="%d" text-anchor="middle">virtual nodes per physical node (V)</text>`+"\n", (plotL+plotR)/2, plotB+42)
	f(`<text transform="translate(22 %d) rotate(-90)" text-anchor="middle">std-dev / mean of keys per node</text>`+"\n", (plotT+plotB)/2)

	for i, c := range curves {
		if !c.NoLine && len(c.Points) > 1 {
			f(`<polyline fill="none" stroke="%s" stroke-width="2"`, c.Color)
			if c.Dash != "" {
				f(` stroke-dasharray="%s"`, c.Dash)
			}
			f(` points="`)
			for _, p := range c.Points {
				f("%.1f,%.1f ", px(p[0]), py(clampY(p[1])))
			}
			f(`"/>` + "\n")
		}
		for _, p := range c.Points {
			marker(f, c.Marker, c.Color, px(p[0]), py(clampY(p[1])))
		}
		// Legend entry.
		ly := float64(legendY + i*legendDY)
		if !c.NoLine {
			f(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-width="2"`, legendX, ly, legendX+30, ly, c.Color)
			if c.Dash != "" {
				f(` stroke-dasharray="%s"`, c.Dash)
			}
			f("/>\n")
		}
		marker(f, c.Marker, c.Color, legendX+15, ly)
		f(`<text x="%d" y="%.1f">%s</text>`+"\n", legendX+38, ly+4, html.EscapeString(c.Label))
	}
	f("</svg>\n")
	return b.Flush()
}

func clampY(y float64) float64 { return min(max(y, yMin), yMax) }

func marker(f func(string, ...any), kind, color string, x, y float64) {
	switch kind {
	case "circle":
		f(`<circle cx="%.1f" cy="%.1f" r="4" fill="%s"/>`+"\n", x, y, color)
	case "square":
		f(`<rect x="%.1f" y="%.1f" width="8" height="8" fill="%s"/>`+"\n", x-4, y-4, color)
	case "cross":
		f(`<path d="M%.1f %.1fl10 10m0 -10l-10 10" stroke="%s" stroke-width="2.5"/>`+"\n", x-5, y-5, color)
	}
}

// StdDevCurves turns measured tables (one per hash, keyed by the hash's name)
// into chart curves: the measured average for N=5 and N=10 beside the
// article's 1/√(N·V), the random-arc model and the article's own figures.
func StdDevCurves(measured []NamedTable, keys int) []Curve {
	colors := []string{"#d62728", "#ff7f0e", "#1f77b4", "#17becf", "#2ca02c", "#9467bd"}
	var out []Curve
	ns := map[int]bool{}
	for _, t := range measured {
		byN := map[int][][2]float64{}
		var order []int
		for _, s := range t.Stats {
			if _, ok := byN[s.N]; !ok {
				order = append(order, s.N)
			}
			byN[s.N] = append(byN[s.N], [2]float64{float64(s.V), s.CV})
			ns[s.N] = true
		}
		for _, n := range order {
			mk := "circle"
			if n >= 10 {
				mk = "square"
			}
			out = append(out, Curve{
				Label: fmt.Sprintf("measured, %s, N=%d", t.Hash, n), Color: colors[len(out)%len(colors)],
				Marker: mk, Points: byN[n],
			})
		}
	}
	sample := func(fn func(v float64) float64) [][2]float64 {
		var pts [][2]float64
		for i := 0; i <= 60; i++ {
			v := math.Pow(10, 3*float64(i)/60)
			pts = append(pts, [2]float64{v, fn(v)})
		}
		return pts
	}
	for _, n := range []int{5, 10} {
		if !ns[n] {
			continue
		}
		nf := float64(n)
		gray := map[int]string{5: "#555", 10: "#999"}[n]
		out = append(out, Curve{Label: fmt.Sprintf("1/√(N·V), N=%d (article)", n), Color: gray, Dash: "7 5",
			Points: sample(func(v float64) float64 { return 1 / math.Sqrt(nf*v) })})
	}
	for _, n := range []int{5, 10} {
		if !ns[n] {
			continue
		}
		nf, kf := float64(n), float64(keys)
		gray := map[int]string{5: "#555", 10: "#999"}[n]
		out = append(out, Curve{Label: fmt.Sprintf("random arcs ≈ 1/√V, N=%d", n), Color: gray, Dash: "2 4",
			Points: sample(func(v float64) float64 { return arcModel(nf, v, kf) })})
	}
	var art [][2]float64
	for _, v := range []int{1, 10, 100, 200, 1000} {
		art = append(art, [2]float64{float64(v), Article[v]})
	}
	out = append(out, Curve{Label: "article's table (N=5)", Color: "black", Marker: "cross", NoLine: true, Points: art})
	return out
}

// NamedTable is a LoadTable measured with the hash called Hash.
type NamedTable struct {
	Hash  string
	Stats []LoadStat
}
