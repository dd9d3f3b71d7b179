package console

import (
	"strconv"
	"time"

	"github.com/credgate/credgate/policy"
)

// The chart is drawn here, as SVG the template writes inline: no chart
// library, nothing for the browser to fetch, and it reads without
// JavaScript.

// Chart geometry (SVG user units).
const (
	chartW, chartH   = 720.0, 200.0
	chartLeft        = 36.0
	chartBottom      = 24.0
	chartTop         = 8.0
	chartBarGap      = 2.0
	chartGridLines   = 4
	chartLabelEveryH = 3
)

// chart is a stacked bar chart of checks per hour by outcome.
type chart struct {
	W, H   float64
	Bars   []bar
	Grid   []gridLine
	Labels []axisLabel
	Max    int
}

// bar is one hour's bar; its tooltip (the hour and each outcome's count)
// is written by the template, in the page's words.
type bar struct {
	Rects  []rect
	Hour   string
	Counts []counted
}

type rect struct {
	X, Y, W, H float64
	Class      string
}

type gridLine struct {
	Y     float64
	Label string
}

type axisLabel struct {
	X     float64
	Label string
}

// stackedBars lays out one bar per hour from start, each stacked by
// series (outcomes) in order.
func stackedBars(start time.Time, perHour []map[policy.Outcome]int, series []policy.Outcome) chart {
	ch := chart{W: chartW, H: chartH}
	for _, h := range perHour {
		t := 0
		for _, n := range h {
			t += n
		}
		ch.Max = max(ch.Max, t)
	}
	scaleMax := niceCeil(ch.Max)
	plotH := chartH - chartBottom - chartTop
	slot := (chartW - chartLeft) / float64(len(perHour))
	for i := 0; i <= chartGridLines; i++ {
		v := scaleMax * i / chartGridLines
		y := chartH - chartBottom - plotH*float64(i)/chartGridLines
		ch.Grid = append(ch.Grid, gridLine{Y: y, Label: strconv.Itoa(v)})
	}
	for i, h := range perHour {
		x := chartLeft + float64(i)*slot + chartBarGap/2
		hour := start.Add(time.Duration(i) * time.Hour).In(chinaTime)
		b := bar{Hour: hour.Format("01-02 15:00")}
		y := chartH - chartBottom
		for _, o := range series {
			n := h[o]
			if n == 0 {
				continue
			}
			hgt := plotH * float64(n) / float64(scaleMax)
			y -= hgt
			b.Rects = append(b.Rects, rect{X: x, Y: y, W: slot - chartBarGap, H: hgt, Class: "o-" + string(o)})
			b.Counts = append(b.Counts, counted{Name: string(o), Count: n})
		}
		ch.Bars = append(ch.Bars, b)
		if i%chartLabelEveryH == 0 {
			ch.Labels = append(ch.Labels, axisLabel{X: x, Label: hour.Format("15:00")})
		}
	}
	return ch
}

// niceCeil rounds a maximum up to a scale whose grid lines are whole
// numbers: at least chartGridLines, then 1, 2 or 5 times a power of ten,
// times the grid lines.
func niceCeil(n int) int {
	if n <= chartGridLines {
		return chartGridLines
	}
	step := 1
	for {
		for _, m := range []int{1, 2, 5} {
			if s := step * m * chartGridLines; s >= n {
				return s
			}
		}
		step *= 10
	}
}
