package gclab

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

// Chart geometry: one panel per run, stacked, sharing both axes.
const (
	chartW         = 900
	panelH         = 120
	panelGap       = 34
	plotL, plotR   = 70, 860
	chartTop       = 56
	chartBottomPad = 50
)

var colors = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b"}

// WriteChart draws each run's heap over time, from its gctrace lines: at each
// cycle's start, at its end, then the live heap it marked (where the next
// climb starts). A dashed line marks GOMEMLIMIT where one was set. The axes
// are shared, so the panels compare at a glance.
func WriteChart(w io.Writer, title string, runs []Run) error {
	var tMax time.Duration
	var yMax int64 = 1
	for _, r := range runs {
		for _, c := range r.Cycles {
			tMax = max(tMax, c.At+c.Wall())
			yMax = max(yMax, c.HeapStart, c.HeapEnd)
		}
		if lim := limitMB(r.Setting); lim > 0 {
			yMax = max(yMax, lim)
		}
	}
	yTop := niceCeil(float64(yMax) * 1.05)
	xTop := niceCeil(max(tMax.Seconds(), 0.001))
	height := chartTop + len(runs)*(panelH+panelGap) + chartBottomPad

	b := bufio.NewWriter(w)
	f := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	f(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", chartW, height, chartW, height)
	f(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	f(`<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", plotL, html.EscapeString(title))
	f(`<text x="%d" y="42" fill="#555">heap MB from each gctrace line: at the cycle's start, at its end, then the live heap it marked; same axes in every panel</text>`+"\n", plotL)
	for i, r := range runs {
		top := chartTop + i*(panelH+panelGap) + 16
		bottom := top + panelH
		px := func(d time.Duration) float64 { return plotL + (plotR-plotL)*d.Seconds()/xTop }
		py := func(mb int64) float64 { return float64(bottom) - float64(panelH)*float64(mb)/yTop }
		s := r.Summary()
		f(`<text x="%d" y="%d" font-weight="bold">%s</text>`, plotL, top-5, html.EscapeString(r.Setting.String()))
		f(`<text x="%d" y="%d" text-anchor="end" fill="#555">%d cycles, GC CPU %.1f%%, peak %d MB, max pause %s</text>`+"\n",
			plotR, top-5, s.Cycles, 100*s.WindowCPU, s.PeakHeap, msString(s.PauseMax))
		for _, y := range ticks(yTop) {
			f(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>`, plotL, py(int64(y)), plotR, py(int64(y)))
			f(`<text x="%d" y="%.1f" text-anchor="end" font-size="10">%s</text>`+"\n", plotL-5, py(int64(y))+3, strconv.FormatFloat(y, 'f', -1, 64))
		}
		f(`<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", plotL, top, plotR-plotL, panelH)
		if lim := limitMB(r.Setting); lim > 0 {
			f(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#000" stroke-dasharray="6 4"/>`, plotL, py(lim), plotR, py(lim))
			f(`<text x="%d" y="%.1f" text-anchor="end" font-size="10">GOMEMLIMIT</text>`+"\n", plotR-4, py(lim)-3)
		}
		var pts []string
		for _, c := range r.Cycles {
			end := c.At + c.Wall()
			pts = append(pts,
				fmt.Sprintf("%.1f,%.1f", px(c.At), py(c.HeapStart)),
				fmt.Sprintf("%.1f,%.1f", px(end), py(c.HeapEnd)),
				fmt.Sprintf("%.1f,%.1f", px(end), py(c.HeapLive)))
		}
		if len(pts) > 0 {
			f(`<polyline fill="none" stroke="%s" stroke-width="1.2" points="%s"/>`+"\n", colors[i%len(colors)], strings.Join(pts, " "))
		}
	}
	axisY := chartTop + len(runs)*(panelH+panelGap) + 2
	for _, x := range ticks(xTop) {
		xp := plotL + (plotR-plotL)*x/xTop
		f(`<text x="%.1f" y="%d" text-anchor="middle" font-size="10">%s</text>`+"\n", xp, axisY, strconv.FormatFloat(x, 'f', -1, 64))
	}
	f(`<text x="%d" y="%d" text-anchor="middle">seconds since the child started</text>`+"\n", (plotL+plotR)/2, axisY+18)
	f("</svg>\n")
	return b.Flush()
}

func msString(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + " ms"
}

// limitMB is the setting's GOMEMLIMIT in MB (MiB), or 0.
func limitMB(s Setting) int64 {
	v := s.GOMEMLIMIT
	for _, u := range []struct {
		suffix string
		div    float64
	}{{"GiB", 1.0 / 1024}, {"MiB", 1}, {"KiB", 1024}, {"B", 1 << 20}} {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			f, err := strconv.ParseFloat(n, 64)
			if err != nil {
				return 0
			}
			return int64(f / u.div)
		}
	}
	return 0
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// ticks returns 0 and four or five more evenly spaced values up to top.
func ticks(top float64) []float64 {
	step := niceCeil(top / 5)
	var out []float64
	for v := 0.0; v <= top+step/1e6; v += step {
		out = append(out, math.Round(v*1e6)/1e6)
	}
	return out
}
