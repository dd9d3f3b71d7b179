// Command scalesim is credgate's load model past one machine
// (docs/SCALE.md): the national load of checks, by region, minute by
// minute over the busiest working day of the year (an office-hours curve,
// the year-end peak, banks' re-screening waves at seeded random times),
// routed to regional shards, against the capacities of one credgate
// replica, one evidence log, one Redis and one PostgreSQL read replica as
// measured in docs/PERFORMANCE.md. For each component it reports the
// busiest shard's peak demand, its utilisation and headroom, and the
// queueing delay at that peak (an M/M/c queue per component).
//
//	go run ./internal/scalesim [-scale 1] [-shards 8] [-seed 1]
//
// The model is arithmetic over a seeded random draw: the same flags give
// the same table.
package main

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Region is a province-level region and its share of the checks.
type Region struct {
	Name   string
	Weight float64
}

// Component is one kind of server in a shard.
type Component struct {
	Name string
	// Capacity is what one unit serves per second, as measured.
	Capacity float64
	// Source names where Capacity was measured.
	Source string
	// Units per shard.
	Units int
	// PerCheck and PerScreened are the demand, in Capacity's unit, of one
	// check and of one subject of a screening job.
	PerCheck, PerScreened float64
}

// Config is the load and the design.
type Config struct {
	Seed int64
	// Scale multiplies the checks (not the screening waves).
	Scale float64
	// AnnualChecks over WorkingDays; OfficeShare of a day's checks fall
	// in the office hours of OfficeHours, the rest evenly over the others.
	AnnualChecks float64
	WorkingDays  int
	OfficeShare  float64
	// OfficeHours weighs each hour of the day (0 outside office hours).
	OfficeHours [24]float64
	// YearEnd multiplies the busiest day's checks against an average day.
	YearEnd float64
	// Screening waves: WavesPerDay jobs on average (Poisson), each of WaveSubjects subjects (uniform between the two)
	// arriving at a random minute; a shard screens one job at a time at
	// WaveRate subjects per second.
	WavesPerDay  float64
	WaveSubjects [2]float64
	WaveRate     float64
	Regions      []Region
	// Shards is how many regional deployments the regions are routed to.
	Shards     int
	Components []Component
	// BytesPerRecord is the evidence storage per check.
	BytesPerRecord float64
}

// Result is the model's answer.
type Result struct {
	Scale float64
	// DayChecks is the busiest day's checks, nationally.
	DayChecks float64
	// PeakChecks is the busiest minute's checks per second, nationally,
	// and PeakScreened the most screening subjects per second.
	PeakChecks, PeakScreened float64
	// Waves is the screening jobs of the day; JobWait the longest a job
	// waited for the one before it on its shard.
	Waves      int
	JobWait    time.Duration
	Shards     []ShardLoad
	Components []ComponentResult
	// LogBytesPerYear is the busiest shard's evidence log per year, were
	// every day of the year at this scale's average.
	LogBytesPerYear float64
}

// ShardLoad is a shard's regions and share of the checks.
type ShardLoad struct {
	Regions []string
	Share   float64
}

// ComponentResult is one component on the busiest shard for it, at its
// busiest minute.
type ComponentResult struct {
	Name     string
	Units    int
	Capacity float64 // per shard: Units × the unit's capacity
	Peak     float64 // demand per second
	Shard    int
	// Utilisation is Peak / Capacity; Headroom is Capacity / Peak.
	Utilisation, Headroom float64
	// MeanWait and P99Wait are the M/M/c queueing delay at the peak
	// (before service); Overloaded when Peak ≥ Capacity.
	MeanWait, P99Wait time.Duration
	Overloaded        bool
}

// Run models one day at one-minute steps.
func Run(cfg Config) Result {
	shards, share := route(cfg.Regions, cfg.Shards)
	var total float64
	for _, r := range cfg.Regions {
		total += r.Weight
	}
	regionShare := make([]float64, len(cfg.Regions))
	for i, r := range cfg.Regions {
		regionShare[i] = r.Weight / total
	}
	regionShard := make([]int, len(cfg.Regions))
	for s, idx := range shards {
		for _, i := range idx {
			regionShard[i] = s
		}
	}

	day := cfg.AnnualChecks / float64(cfg.WorkingDays) * cfg.YearEnd * cfg.Scale
	var office, offHours float64
	for _, w := range cfg.OfficeHours {
		if w > 0 {
			office += w
		} else {
			offHours++
		}
	}
	// checks per second in each hour, nationally
	var perHour [24]float64
	for h, w := range cfg.OfficeHours {
		if w > 0 {
			perHour[h] = day * cfg.OfficeShare * w / office / 3600
		} else {
			perHour[h] = day * (1 - cfg.OfficeShare) / offHours / 3600
		}
	}

	// Screening waves: a shard runs its jobs one at a time, at the job
	// pace, in the order they arrive. They are a load of their own, not
	// scaled with the checks.
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5ca1e))
	type wave struct {
		shard, arrive, start, end int // minutes
	}
	var waves []wave
	for n := poisson(rng, cfg.WavesPerDay); n > 0; n-- {
		region := pick(rng, regionShare)
		subjects := cfg.WaveSubjects[0] + rng.Float64()*(cfg.WaveSubjects[1]-cfg.WaveSubjects[0])
		arrive := rng.IntN(24 * 60)
		minutes := int(math.Ceil(subjects / cfg.WaveRate / 60))
		waves = append(waves, wave{shard: regionShard[region], arrive: arrive, end: minutes})
	}
	slices.SortStableFunc(waves, func(a, b wave) int { return cmp.Compare(a.arrive, b.arrive) })
	free := make([]int, len(shards))
	var jobWait int
	for i := range waves {
		w := &waves[i]
		w.start = max(w.arrive, free[w.shard])
		w.end += w.start
		free[w.shard] = w.end
		jobWait = max(jobWait, w.start-w.arrive)
	}

	res := Result{Scale: cfg.Scale, DayChecks: day, Waves: len(waves), JobWait: time.Duration(jobWait) * time.Minute}
	for s, idx := range shards {
		sl := ShardLoad{Share: share[s]}
		for _, i := range idx {
			sl.Regions = append(sl.Regions, cfg.Regions[i].Name)
		}
		res.Shards = append(res.Shards, sl)
	}
	res.Components = make([]ComponentResult, len(cfg.Components))
	for c, comp := range cfg.Components {
		res.Components[c] = ComponentResult{Name: comp.Name, Units: comp.Units, Capacity: float64(comp.Units) * comp.Capacity}
	}
	checks := make([]float64, len(shards))
	screened := make([]float64, len(shards))
	for m := 0; m < 24*60; m++ {
		national := perHour[m/60]
		var nationalScreened float64
		for s := range shards {
			checks[s] = national * share[s]
			screened[s] = 0
		}
		for _, w := range waves {
			if m >= w.start && m < w.end {
				screened[w.shard] += cfg.WaveRate
				nationalScreened += cfg.WaveRate
			}
		}
		res.PeakChecks = max(res.PeakChecks, national)
		res.PeakScreened = max(res.PeakScreened, nationalScreened)
		for c, comp := range cfg.Components {
			for s := range shards {
				d := comp.PerCheck*checks[s] + comp.PerScreened*screened[s]
				if d > res.Components[c].Peak {
					res.Components[c].Peak, res.Components[c].Shard = d, s
				}
			}
		}
	}
	for c, comp := range cfg.Components {
		r := &res.Components[c]
		r.Utilisation = r.Peak / r.Capacity
		r.Headroom = math.Inf(1)
		if r.Peak > 0 {
			r.Headroom = r.Capacity / r.Peak
		}
		r.MeanWait, r.P99Wait, r.Overloaded = mmc(r.Peak, comp.Capacity, comp.Units)
	}
	maxShare := slices.Max(share)
	res.LogBytesPerYear = cfg.AnnualChecks * cfg.Scale * maxShare * cfg.BytesPerRecord
	return res
}

// route assigns regions to shards, largest first to the least loaded
// shard, and returns each shard's regions and share of the load.
func route(regions []Region, n int) ([][]int, []float64) {
	n = max(1, min(n, len(regions)))
	order := make([]int, len(regions))
	var total float64
	for i, r := range regions {
		order[i] = i
		total += r.Weight
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(regions[b].Weight, regions[a].Weight) })
	shards := make([][]int, n)
	share := make([]float64, n)
	for _, i := range order {
		s := 0
		for k := 1; k < n; k++ {
			if share[k] < share[s] {
				s = k
			}
		}
		shards[s] = append(shards[s], i)
		share[s] += regions[i].Weight / total
	}
	return shards, share
}

// mmc is the M/M/c queue's waiting time before service: its mean and 99th
// percentile, at arrival rate lambda on c servers of rate mu each.
func mmc(lambda, mu float64, c int) (mean, p99 time.Duration, overloaded bool) {
	if lambda <= 0 {
		return 0, 0, false
	}
	if lambda >= float64(c)*mu {
		return 0, 0, true
	}
	pw := erlangC(lambda/mu, c)
	gap := float64(c)*mu - lambda
	mean = seconds(pw / gap)
	// P(W > t) = pw·e^(−gap·t)
	if pw > 0.01 {
		p99 = seconds(math.Log(pw/0.01) / gap)
	}
	return mean, p99, false
}

// erlangC is the probability that an arrival waits, for offered load a
// (erlangs) on c servers, by the stable recurrence of Erlang B.
func erlangC(a float64, c int) float64 {
	b := 1.0
	for k := 1; k <= c; k++ {
		b = a * b / (float64(k) + a*b)
	}
	rho := a / float64(c)
	return b / (1 - rho + rho*b)
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// poisson draws from a Poisson distribution of mean m (Knuth; m is small).
func poisson(rng *rand.Rand, m float64) int {
	l, k, p := math.Exp(-m), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// pick draws an index with probability weights[i] (which sum to 1).
func pick(rng *rand.Rand, weights []float64) int {
	x := rng.Float64()
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

// String is the result as docs/SCALE.md quotes it.
func (r Result) String() string {
	s := fmt.Sprintf("scale %.4g: busiest day %.3g checks, busiest minute %.0f checks/s nationally; %d screening jobs (at most %.0f subjects/s nationally, longest wait for a shard's previous job %s); %d shards, the largest with %.1f %% of the load\n\n",
		r.Scale, r.DayChecks, r.PeakChecks, r.Waves, r.PeakScreened, r.JobWait, len(r.Shards), 100*slices.Max(shardShares(r.Shards)))
	s += "| component (per shard) | units | capacity /s | peak demand /s | utilisation | headroom | mean wait | p99 wait |\n"
	s += "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
	for _, c := range r.Components {
		wait, p99 := c.MeanWait.Round(time.Microsecond).String(), c.P99Wait.Round(time.Microsecond).String()
		if c.Overloaded {
			wait, p99 = "overloaded", "overloaded"
		}
		s += fmt.Sprintf("| %s | %d | %.0f | %.0f | %.1f %% | %.1f× | %s | %s |\n",
			c.Name, c.Units, c.Capacity, c.Peak, 100*c.Utilisation, c.Headroom, wait, p99)
	}
	s += fmt.Sprintf("\nevidence log of the largest shard: %.2f TB a year\n", r.LogBytesPerYear/1e12)
	return s
}

func shardShares(ss []ShardLoad) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = s.Share
	}
	return out
}
