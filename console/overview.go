package console

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/credgate/credgate/evidence"
	"github.com/credgate/credgate/policy"
	"github.com/credgate/credgate/service"
)

// The overview's statistics come from the newest statsWindow records of
// the evidence log (every answered check is one), so a page costs one
// bounded read however large the log; statsTTL spares the store a read
// per refresh.
const (
	statsWindow = 2000
	statsHours  = 24
	statsTTL    = 2 * time.Second
	topN        = 5
)

// counted is a name and how many.
type counted struct {
	Name  string
	Count int
}

// overviewStats is what the overview shows of the recent checks.
type overviewStats struct {
	readAt   time.Time
	Sampled  int // records read
	Checks   int // of them, checks within the chart's hours
	Chart    chart
	Actions  []counted
	Partners []counted
	// Outcomes are the chart's series, in the chart's order.
	Outcomes []counted
}

type overviewData struct {
	Stats               *overviewStats
	OpenObjections      int
	OverdueObjections   int
	RepairsAwaiting     int
	ExitsAwaiting       int
	EntriesAwaitingExit int
	Partners            int
	Checkpoint          *evidence.StoredCheckpoint
	TreeSize            uint64
	CheckpointAge       string
	Lag                 uint64
	More                bool // a listing reached its bound: counts are "at least"
	// Health: the dependencies' pings, the breakers, and the other
	// sections of /readyz (cache tier, upstream sources) as indented JSON.
	Dependencies map[string]string
	Breakers     map[string]string
	Sections     []healthSection
}

type healthSection struct{ Name, JSON string }

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	p := c.newPage(r, s, "overview")
	d := overviewData{}
	var err error
	if d.Stats, err = c.recentStats(ctx); err != nil {
		c.fail(w, r, s, err)
		return
	}
	count := func(kind service.ProceedingKind, state string) (int, error) {
		ps, _, err := c.deps.Lifecycle.ListProceedings(ctx, kind, state, "", service.MaxPage)
		if len(ps) == service.MaxPage {
			d.More = true
		}
		return len(ps), err
	}
	for _, q := range []struct {
		dst   *int
		kind  service.ProceedingKind
		state string
	}{
		{&d.OpenObjections, service.ProceedingObjection, service.StateOpen},
		{&d.OverdueObjections, service.ProceedingObjection, service.StateOverdue},
		{&d.RepairsAwaiting, service.ProceedingRepair, service.StateOpen},
		{&d.ExitsAwaiting, service.ProceedingExit, service.StateOpen},
	} {
		if *q.dst, err = count(q.kind, q.state); err != nil {
			c.fail(w, r, s, err)
			return
		}
	}
	ps, err := c.deps.Partners.List(ctx, "", service.MaxPage)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	d.Partners = len(ps)
	if len(ps) == service.MaxPage {
		d.More = true
	}
	head, err := c.deps.Records.TreeHead(ctx)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	d.TreeSize = head.Size
	if cp, err := c.deps.Evidence.Checkpoint(ctx); err == nil {
		d.Checkpoint = &cp
		d.Lag = head.Size - min(head.Size, cp.Size)
		d.CheckpointAge = c.now().Sub(cp.At).Round(time.Second).String()
	}
	if c.deps.Health != nil {
		d.Dependencies, d.Breakers, d.Sections = health(c.deps.Health.Health(ctx))
	}
	p.Data = d
	c.render(w, http.StatusOK, "overview", p)
}

// recentStats reads (or reuses) the statistics of the newest records.
func (c *Console) recentStats(ctx context.Context) (*overviewStats, error) {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	now := c.now()
	if c.stats != nil && now.Sub(c.stats.readAt) < statsTTL {
		return c.stats, nil
	}
	head, err := c.deps.Records.TreeHead(ctx)
	if err != nil {
		return nil, err
	}
	after := int64(head.Size) - statsWindow - 1
	if after < -1 {
		after = -1
	}
	recs, err := c.deps.Records.RecordsOfKind(ctx, evidence.KindCheck, after, statsWindow)
	if err != nil {
		return nil, err
	}
	st := summarize(recs, now)
	c.stats = st
	return st, nil
}

// checkBody is what the overview reads of a check record's body (the
// check answer as recorded).
type checkBody struct {
	Partner string         `json:"partner"`
	Action  string         `json:"action"`
	Outcome policy.Outcome `json:"outcome"`
}

// outcomeOrder is the chart's stacking order, from worst to clear.
var outcomeOrder = []policy.Outcome{policy.OutcomeProhibit, policy.OutcomeRestrict, policy.OutcomeStrictReview,
	policy.OutcomeReference, policy.OutcomeIncentive, policy.OutcomeUnverifiable, policy.OutcomeClear}

// summarize counts checks per hour by outcome over the last statsHours,
// and the top actions and partners among them. Records whose body was
// erased or is not a check answer (a subject status) are skipped.
func summarize(recs []evidence.Record, now time.Time) *overviewStats {
	st := &overviewStats{readAt: now, Sampled: len(recs)}
	end := now.Truncate(time.Hour).Add(time.Hour)
	start := end.Add(-statsHours * time.Hour)
	perHour := make([]map[policy.Outcome]int, statsHours)
	for i := range perHour {
		perHour[i] = map[policy.Outcome]int{}
	}
	actions, partners, outcomes := map[string]int{}, map[string]int{}, map[policy.Outcome]int{}
	for _, r := range recs {
		if r.At.Before(start) || !r.At.Before(end) || len(r.Body) == 0 {
			continue
		}
		var b checkBody
		if json.Unmarshal(r.Body, &b) != nil || b.Outcome == "" || b.Action == "" {
			continue
		}
		st.Checks++
		perHour[int(r.At.Sub(start)/time.Hour)][b.Outcome]++
		actions[b.Action]++
		partners[r.Partner]++
		outcomes[b.Outcome]++
	}
	st.Actions, st.Partners = top(actions), top(partners)
	var series []policy.Outcome
	for _, o := range outcomeOrder {
		if outcomes[o] > 0 {
			series = append(series, o)
			st.Outcomes = append(st.Outcomes, counted{Name: string(o), Count: outcomes[o]})
		}
	}
	st.Chart = stackedBars(start, perHour, series)
	return st
}

func top(m map[string]int) []counted {
	out := make([]counted, 0, len(m))
	for k, v := range m {
		out = append(out, counted{Name: k, Count: v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Name < out[j].Name
	})
	if len(out) > topN {
		out = out[:topN]
	}
	return out
}

// health splits the /readyz report into what the overview lays out and
// the sections it shows as they are.
func health(report map[string]any) (deps, breakers map[string]string, sections []healthSection) {
	for _, name := range slices.Sorted(maps.Keys(report)) {
		switch v := report[name].(type) {
		case map[string]string:
			if name == "dependencies" {
				deps = v
				continue
			}
			if name == "breakers" {
				breakers = v
				continue
			}
		}
		b, err := json.MarshalIndent(report[name], "", "  ")
		if err != nil {
			continue
		}
		sections = append(sections, healthSection{Name: name, JSON: string(b)})
	}
	return deps, breakers, sections
}
