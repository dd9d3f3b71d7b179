package console

import (
	"errors"
	"html/template"
	"net/url"
	"strconv"
	"time"
)

// viewPageNames are the pages of what the API had and the console did
// not show: the administrative acts (acts.go), webhook deliveries and
// dead letters (deliveries.go) and overdue execution feedback
// (overdue.go). They render inside layout.html as pageNames do.
var viewPageNames = []string{"acts", "deliveries", "overdue"}

// parseViewPages adds the view pages to the parsed pages.
func parseViewPages(out map[string]*pageTemplate) error {
	for _, name := range viewPageNames {
		t, err := template.New(name).Funcs(templateFuncs).
			ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return err
		}
		out[name] = &pageTemplate{t: t}
	}
	return nil
}

// viewPage bounds the rows one of these pages lists.
const viewPage = 50

var (
	errLogIndex = errors.New("after must be a log index (the next of the previous page)")
	errPeriod   = errors.New("the period ends before it starts")
)

// nextPage is the address of a page's next page: the page's path and its
// query, encoded here, so that the template does not encode it again.
func nextPage(path string, q url.Values) template.URL {
	return template.URL(path + "?" + q.Encode()) // #nosec G203 -- every value is query-encoded
}

// readAfter reads a page's after= (a log index, the next of the previous
// page): -1, the start, when absent.
func readAfter(q url.Values) (int64, error) {
	raw := q.Get("after")
	if raw == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 0 {
		return 0, invalidInput("after", errLogIndex)
	}
	return n, nil
}

// period reads from= and to=, whole days of the console's zone (the last
// day included): the instants [from, to), zero when a date is absent.
func (c *Console) period(from, to string) (start, end time.Time, err error) {
	for _, f := range []struct {
		name, raw string
		dst       *time.Time
		days      int
	}{{"from", from, &start, 0}, {"to", to, &end, 1}} {
		if f.raw == "" {
			continue
		}
		t, perr := time.ParseInLocation(time.DateOnly, f.raw, c.zone)
		if perr != nil {
			return time.Time{}, time.Time{}, invalidInput(f.name, errSearchDate)
		}
		*f.dst = t.AddDate(0, 0, f.days)
	}
	if !start.IsZero() && !end.IsZero() && !end.After(start) {
		return time.Time{}, time.Time{}, invalidInput("to", errPeriod)
	}
	return start, end, nil
}
