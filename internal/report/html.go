package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"

	"github.com/gitgrant/gitgrant/internal/render"
)

//go:embed report.html.tmpl
var pageTemplate string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"role":     roleName,
	"stat":     statText,
	"percent":  percent,
	"day":      day,
	"short":    render.ShortSHA,
	"pr":       render.PRRef,
	"join":     strings.Join,
	"signedpp": signedPercent,
	"signeddu": signedDuration,
}).Parse(pageTemplate))

// chartWidth and the rest lay out every bar chart: labels left, bars
// right, one row per bar.
const (
	chartWidth = 900
	labelWidth = 220
	barHeight  = 18
	rowHeight  = 26
	barsWidth  = chartWidth - labelWidth - 220
	labelRunes = 30
)

// chart is one horizontal bar chart, laid out for the template.
type chart struct {
	ID, Title, Unit string
	Height          int
	Rows            []chartRow
	Legend          []legendItem
}

type chartRow struct {
	Label    string // whole, in data-label and the bars' titles
	Shown    string // cut to fit beside the bars
	Y, TextY int
	Segments []segment
	Value    string
	ValueX   int
}

type segment struct {
	Class, Title string
	X, Width     int
}

type legendItem struct{ Class, Label string }

type barInput struct {
	label  string
	values []float64 // stacked
	value  string    // printed after the bar
}

// newChart scales stacked bars to the largest total.
func newChart(id, title string, legend []legendItem, bars []barInput) chart {
	c := chart{ID: id, Title: title, Legend: legend, Height: max(len(bars), 1)*rowHeight + 8}
	top := 0.0
	for _, b := range bars {
		sum := 0.0
		for _, v := range b.values {
			sum += v
		}
		top = max(top, sum)
	}
	for i, b := range bars {
		row := chartRow{Label: b.label, Shown: cut(b.label, labelRunes), Y: 4 + i*rowHeight, TextY: 4 + i*rowHeight + 13, Value: b.value}
		x := labelWidth
		for j, v := range b.values {
			w := 0
			if top > 0 {
				w = int(v / top * barsWidth)
			}
			class := fmt.Sprintf("s%d", j)
			title := b.label
			if j < len(legend) {
				class, title = legend[j].Class, legend[j].Label+": "+b.label
			}
			row.Segments = append(row.Segments, segment{Class: class, Title: title, X: x, Width: w})
			x += w
		}
		row.ValueX = x + 6
		c.Rows = append(c.Rows, row)
	}
	return c
}

func usedText(rate *float64) string {
	if rate == nil {
		return "use unknown"
	}
	return "used " + percent(rate)
}

func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func seconds(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

// charts are the page's charts, computed from the report.
func charts(r *Report) []chart {
	var out []chart
	var lat []barInput
	for _, l := range r.TimeToAccess {
		s := l.WrittenToGranted
		lat = append(lat, barInput{label: roleName(l.Provider, l.Role), values: []float64{seconds(s.P50), max(seconds(s.P90)-seconds(s.P50), 0)},
			value: durationText(s.P50) + " / " + durationText(s.P90)})
	}
	out = append(out, newChart("time-to-access", "Time to access, written → granted (p50, p90)", []legendItem{{"p50", "p50"}, {"p90", "p90"}}, lat))

	var priv []barInput
	for _, p := range r.Privilege {
		priv = append(priv, barInput{label: roleName(p.Provider, p.Role), values: []float64{p.JITHours, p.StandingHours},
			value: fmt.Sprintf("%.0f h JIT, %.0f h standing", p.JITHours, p.StandingHours)})
	}
	out = append(out, newChart("privilege", "Hours held: just in time vs standing", []legendItem{{"jit", "just in time"}, {"standing", "standing"}}, priv))

	var use []barInput
	for _, u := range r.Usage {
		use = append(use, barInput{label: roleName(u.Provider, u.Role), values: []float64{float64(u.Used), float64(u.NotSeen), float64(u.Unknown)},
			value: usedText(u.Rate)})
	}
	out = append(out, newChart("usage", "Grants used", []legendItem{{"used", "used"}, {"notseen", "not seen"}, {"unknown", "unknown"}}, use))

	var ref []barInput
	for _, k := range refusalKinds {
		n := r.Refusals.Counts[k]
		ref = append(ref, barInput{label: k, values: []float64{float64(n)}, value: fmt.Sprint(n)})
	}
	out = append(out, newChart("refusals", "Refused and unauthorized attempts", []legendItem{{"refused", "attempts"}}, ref))

	var appr []barInput
	for _, a := range r.Approvals {
		rate := 0.0
		if a.Rate != nil {
			rate = *a.Rate * 100
		}
		appr = append(appr, barInput{label: roleName(a.Provider, a.Role) + " " + a.Month, values: []float64{rate},
			value: fmt.Sprintf("%s of %d", percent(a.Rate), a.Merged)})
	}
	out = append(out, newChart("approvals", "Approval rate by role and month", []legendItem{{"rate", "granted of merged"}}, appr))
	return out
}

// WriteHTML writes the report as one self-contained page: inline CSS and
// SVG, no script and nothing fetched. html/template escapes every value
// (request paths, logins, roles) in its context.
func WriteHTML(w io.Writer, r *Report) error {
	return page.Execute(w, struct {
		*Report
		Charts     []chart
		Kinds      []string
		ChartWidth int
		LabelX     int
	}{r, charts(r), refusalKinds, chartWidth, labelWidth - 8})
}
