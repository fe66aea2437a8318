package sim

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"time"
)

// Curve is one algorithm's latency by percentile.
type Curve struct {
	Label  string
	Color  string // any SVG colour
	Dash   string // SVG stroke-dasharray; "" is solid
	Result Result
}

// Chart geometry: x is the percentile on a "nines" scale (−log10(1 − q):
// p90 = 1, p99 = 2, p99.9 = 3), y the latency in ms on a log scale.
const (
	chartW, chartH         = 900, 520
	plotL, plotR           = 80, 600
	plotT, plotB           = 50, 450
	xMaxNines              = 3.0
	yMinMS, yMaxMS         = 0.1, 100.0
	legendX, legendY, legR = 620, 70, 24
)

func px(nines float64) float64 { return plotL + (plotR-plotL)*nines/xMaxNines }

func py(ms float64) float64 {
	ms = min(max(ms, yMinMS), yMaxMS)
	return plotB - (plotB-plotT)*math.Log10(ms/yMinMS)/math.Log10(yMaxMS/yMinMS)
}

// WriteChart draws the curves as an SVG percentile plot. It needs no
// plotting library: the chart is a few dozen SVG elements, and the same
// simulation gives the same bytes, so `go generate` output is stable.
func WriteChart(w io.Writer, title string, curves []Curve) error {
	b := bufio.NewWriter(w)
	f := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	f(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartW, chartH, chartW, chartH)
	f(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	f(`<text x="%d" y="28" font-size="15" font-weight="bold">%s</text>`+"\n", plotL, html.EscapeString(title))
	for _, t := range []struct {
		nines float64
		label string
	}{{0, "p0"}, {math.Log10(2), "p50"}, {1, "p90"}, {2, "p99"}, {3, "p99.9"}} {
		f(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e5e5e5"/>`+"\n", px(t.nines), plotT, px(t.nines), plotB)
		f(`<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px(t.nines), plotB+18, t.label)
	}
	for _, ms := range []float64{0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100} {
		f(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e5e5e5"/>`+"\n", plotL, py(ms), plotR, py(ms))
		f(`<text x="%d" y="%.1f" text-anchor="end">%s ms</text>`+"\n", plotL-6, py(ms)+4, strconv.FormatFloat(ms, 'f', -1, 64))
	}
	f(`<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>`+"\n", plotL, plotT, plotR-plotL, plotB-plotT)
	f(`<text x="%d" y="%d" text-anchor="middle">percentile</text>`+"\n", (plotL+plotR)/2, plotB+40)
	f(`<text transform="translate(22 %d) rotate(-90)" text-anchor="middle">latency (log scale)</text>`+"\n", (plotT+plotB)/2)
	for i, c := range curves {
		f(`<polyline fill="none" stroke="%s" stroke-width="2"`, c.Color)
		if c.Dash != "" {
			f(` stroke-dasharray="%s"`, c.Dash)
		}
		f(` points="`)
		for k := 0; k <= 150; k++ {
			nines := xMaxNines * float64(k) / 150
			q := 1 - math.Pow(10, -nines)
			f("%.1f,%.1f ", px(nines), py(ms(c.Result.Quantile(q))))
		}
		f(`"/>` + "\n")
		ly := float64(legendY + i*legR)
		f(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-width="2"`, legendX, ly, legendX+30, ly, c.Color)
		if c.Dash != "" {
			f(` stroke-dasharray="%s"`, c.Dash)
		}
		f("/>\n")
		f(`<text x="%d" y="%.1f">%s</text>`+"\n", legendX+38, ly+4, html.EscapeString(c.Label))
	}
	f("</svg>\n")
	return b.Flush()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
