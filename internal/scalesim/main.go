package main

import (
	"flag"
	"fmt"
	"os"
)

// Default is the national load of docs/SCALE.md against the capacities of
// docs/PERFORMANCE.md, on the design past one machine.
func Default() Config {
	return Config{
		Seed:         1,
		Scale:        1,
		AnnualChecks: 600e6, // SCALE.md, "The national load"
		WorkingDays:  250,
		OfficeShare:  0.8,
		// 9:00-12:00 and 13:00-18:00 China Standard Time, rising to
		// mid-morning and mid-afternoon peaks (assumption).
		OfficeHours: [24]float64{9: 0.9, 10: 1.2, 11: 1.1, 13: 0.8, 14: 1.1, 15: 1.2, 16: 1.1, 17: 0.6},
		// The last working days of the year: twice an average day
		// (assumption: year-end procurement and credit renewals).
		YearEnd: 2,
		// Banks re-screening their books through screening jobs: 20 a
		// day nationally, of 1 to 5 million subjects; a shard runs one
		// job at a time at 2 000 subjects a second (assumption: the
		// job runner's pace, a tenth of a shard's replicas).
		WavesPerDay:  20,
		WaveSubjects: [2]float64{1e6, 5e6},
		WaveRate:     2000,
		Regions:      provinces(),
		Shards:       8,
		Components:   components(),
		// Evidence storage per check on PostgreSQL, measured: the record,
		// its tree nodes and the follow-up index (SCALE.md, "Evidence
		// storage").
		BytesPerRecord: 1625,
	}
}

// components are one shard's servers. Capacities are the figures of
// docs/PERFORMANCE.md, measured on a 2-core VM sharing its cores with the
// database and the load generator: conservative for server hardware.
func components() []Component {
	return []Component{
		{
			Name: "credgate replica (2 cores)", Capacity: 10106, Units: 2, PerCheck: 1, PerScreened: 1,
			Source: "PERFORMANCE.md, HTTP load: `credgate bench`, Results on a quiet machine (PostgreSQL, 64 workers, 2026-11-27)",
		},
		{
			// A screening job's answers are one record (their tree's
			// root), not one per subject.
			Name: "evidence log (PostgreSQL primary, current period)", Capacity: 11116, Units: 1, PerCheck: 1, PerScreened: 0,
			Source: "PERFORMANCE.md, Evidence, Append throughput with group commit (PostgreSQL, 128 callers)",
		},
		{
			// Every check and screened subject missing the replica's
			// own cache: one round trip each (the worst case).
			Name: "Redis Cluster master", Capacity: 13827, Units: 3, PerCheck: 1, PerScreened: 1,
			Source: "PERFORMANCE.md, Cache, Lookup and check (Redis hit, one caller: latency-bound, so a floor)",
		},
		{
			// A tenth of checks miss both cache tiers (assumption);
			// screened subjects are cold: every one is a store read.
			Name: "entries PostgreSQL read replica", Capacity: 3091, Units: 2, PerCheck: 0.1, PerScreened: 1,
			Source: "PERFORMANCE.md, Cache, Lookup and check (full miss, one caller: latency-bound, so a floor)",
		},
	}
}

// provinces weighs the 31 province-level regions by resident population
// (millions, National Bureau of Statistics, end of 2023, rounded;
// assumption: checks follow population) and adds the national platforms
// as a region of their own with a tenth of the load.
func provinces() []Region {
	return []Region{
		{"Guangdong", 127}, {"Shandong", 101}, {"Henan", 98}, {"Jiangsu", 85}, {"Sichuan", 84},
		{"Hebei", 74}, {"Hunan", 66}, {"Zhejiang", 66}, {"Anhui", 61}, {"Hubei", 58},
		{"Guangxi", 50}, {"Yunnan", 47}, {"Jiangxi", 45}, {"Liaoning", 42}, {"Fujian", 42},
		{"Shaanxi", 40}, {"Guizhou", 38}, {"Shanxi", 35}, {"Chongqing", 32}, {"Heilongjiang", 31},
		{"Xinjiang", 26}, {"Shanghai", 25}, {"Gansu", 25}, {"Inner Mongolia", 24}, {"Jilin", 23},
		{"Beijing", 22}, {"Tianjin", 14}, {"Hainan", 10}, {"Ningxia", 7}, {"Qinghai", 6},
		{"Tibet", 4},
		{"national platforms", 156}, // a tenth of the total: 1 409 / 9
	}
}

// ScaleFor is the scale at which the busiest minute has peak checks/s.
func ScaleFor(cfg Config, peak float64) float64 {
	cfg.Scale = 1
	return peak / Run(cfg).PeakChecks
}

// OneMachine is the same load on one deployment of one unit each.
func OneMachine(cfg Config) Config {
	cfg.Shards = 1
	cs := make([]Component, len(cfg.Components))
	copy(cs, cfg.Components)
	for i := range cs {
		cs[i].Units = 1
	}
	cfg.Components = cs
	return cfg
}

func main() {
	cfg := Default()
	fs := flag.NewFlagSet("scalesim", flag.ExitOnError)
	fs.Float64Var(&cfg.Scale, "scale", cfg.Scale, "multiply the national load by this")
	fs.IntVar(&cfg.Shards, "shards", cfg.Shards, "regional shards the regions are routed to")
	fs.Int64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the screening waves")
	fs.Float64Var(&cfg.WavesPerDay, "jobs", cfg.WavesPerDay, "screening jobs a day nationally (mean)")
	peak := fs.Float64("peak", 0, "set the scale so that the busiest minute has this many checks/s (2500: the design figure)")
	one := fs.Bool("one-machine", false, "one deployment with one unit of each component")
	_ = fs.Parse(os.Args[1:])
	if *one {
		cfg = OneMachine(cfg)
	}
	if *peak > 0 {
		cfg.Scale = ScaleFor(cfg, *peak)
	}
	fmt.Print(Run(cfg))
}
