package schema

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// benchTree generates n request files that look like real ones: a mix of
// roles, durations, expiries and optional fields, all valid.
func benchTree(n int) []File {
	files := make([]File, n)
	logins := []string{"alice", "bob"}
	for i := range files {
		var body string
		switch i % 3 {
		case 0:
			body = fmt.Sprintf("# yaml-language-server: $schema=../../schema/request.schema.json\nrequester: %s\ngrants:\n  - provider: orders-db\n    role: readwrite\nduration: %dh\nreason: Repair stuck orders after INC-%d\nticket: INC-%d\n", logins[i%2], 1+i%4, i, i)
		case 1:
			body = fmt.Sprintf("requester: %s\ngrants:\n  - provider: orders-db\n    role: readonly\nexpires: 2026-11-23T%02d:00:00Z\nstarts: 2026-11-23T00:00:00Z\nreason: Read order history for the refund audit %d\nticket: INC-%d\n", logins[i%2], 1+i%8, i, i)
		default:
			body = fmt.Sprintf("requester: alice\ngrants:\n  - provider: orders-db\n    role: readonly\n  - provider: orders-db\n    role: readwrite\nduration: 30m\nreason: \"Quick fix: replay webhook %d\"\nticket: INC-%d\n", i, i)
		}
		files[i] = File{Path: fmt.Sprintf("requests/orders-db/req-%05d.yaml", i), Data: []byte(body), Size: int64(len(body))}
	}
	return files
}

const benchFiles = 10_000

// BenchmarkDecodeYAML10k is the baseline: only decoding every file with
// yaml.v3, nothing checked.
func BenchmarkDecodeYAML10k(b *testing.B) {
	files := benchTree(benchFiles)
	b.ReportAllocs()
	for b.Loop() {
		for _, f := range files {
			var v map[string]any
			if err := yaml.Unmarshal(f.Data, &v); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkValidate10k is `gitgrant validate` on 10,000 files held in
// memory: YAML, schema, policy, with the default worker count.
func BenchmarkValidate10k(b *testing.B) { benchValidate(b, 0) }

// BenchmarkValidate10kOneWorker is the same on one goroutine, for a
// like-for-like comparison with the single-threaded decode baseline.
func BenchmarkValidate10kOneWorker(b *testing.B) { benchValidate(b, 1) }

func benchValidate(b *testing.B, workers int) {
	files := benchTree(benchFiles)
	cfg := &File{Path: "gitgrant.yaml", Data: readTestFile(b, "testdata/gitgrant.yaml")}
	b.ReportAllocs()
	for b.Loop() {
		rep := Validate(cfg, files, Options{Now: testNow, Workers: workers})
		if errs, _ := rep.Counts(); errs != 0 {
			b.Fatalf("generated tree has %d errors: %v", errs, rep.Diagnostics()[:1])
		}
	}
}

// BenchmarkValidate10kCached is a later pass of a long-running process:
// the same 10,000 files, already parsed once; only policy checks run.
func BenchmarkValidate10kCached(b *testing.B) {
	files := benchTree(benchFiles)
	cfg := &File{Path: "gitgrant.yaml", Data: readTestFile(b, "testdata/gitgrant.yaml")}
	cache := &ParseCache{}
	Validate(cfg, files, Options{Now: testNow, Cache: cache})
	b.ReportAllocs()
	for b.Loop() {
		rep := Validate(cfg, files, Options{Now: testNow, Cache: cache})
		if errs, _ := rep.Counts(); errs != 0 {
			b.Fatalf("generated tree has %d errors", errs)
		}
	}
}

// BenchmarkValidateVsDecode runs, in every iteration, yaml.v3 decoding
// alone and Validate (default workers) on the same files, each first in
// turn, at 1,000 and 10,000 files, and reports the median of
// validate/decode (the goal: at most 1.5) with both mean times:
//
//	go test -run '^$' -bench ValidateVsDecode -benchtime 10x ./schema
func BenchmarkValidateVsDecode(b *testing.B) {
	cfg := &File{Path: "gitgrant.yaml", Data: readTestFile(b, "testdata/gitgrant.yaml")}
	for _, n := range []int{1_000, benchFiles} {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			files := benchTree(n)
			decode := func() time.Duration {
				start := time.Now()
				for _, f := range files {
					var v map[string]any
					if err := yaml.Unmarshal(f.Data, &v); err != nil {
						b.Fatal(err)
					}
				}
				return time.Since(start)
			}
			validate := func() time.Duration {
				start := time.Now()
				rep := Validate(cfg, files, Options{Now: testNow})
				if errs, _ := rep.Counts(); errs != 0 {
					b.Fatalf("generated tree has %d errors", errs)
				}
				return time.Since(start)
			}
			var td, tv time.Duration
			var ratios []float64
			i := 0
			for b.Loop() {
				var d, v time.Duration
				if i%2 == 0 {
					d, v = decode(), validate()
				} else {
					v, d = validate(), decode()
				}
				i++
				td, tv = td+d, tv+v
				ratios = append(ratios, float64(v)/float64(d))
			}
			slices.Sort(ratios)
			b.ReportMetric(float64(td.Microseconds())/1000/float64(i), "ms-decode")
			b.ReportMetric(float64(tv.Microseconds())/1000/float64(i), "ms-validate")
			b.ReportMetric(ratios[len(ratios)/2], "validate/decode")
			b.ReportMetric(0, "ns/op")
		})
	}
}
