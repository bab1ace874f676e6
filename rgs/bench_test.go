package rgs_test

import (
	"sync"
	"testing"

	"github.com/lnsync/lnsync/rgs"
	"github.com/lnsync/lnsync/rgs/rgstest"
)

// mainnetDelta is a synthetic full snapshot the size of mainnet in early 2026:
// 55k channels, 17k nodes, 110k full updates, node data for most nodes.
var mainnetDelta = sync.OnceValue(func() *rgs.Delta {
	return rgstest.Delta(2026, rgstest.Options{
		Nodes:            17_000,
		Channels:         55_000,
		Disabled:         0.05,
		NodeData:         0.8,
		Reminders:        0.05,
		UnfundedFraction: 0.01,
	})
})

func BenchmarkEncodeMainnet(b *testing.B) {
	d := mainnetDelta()
	for _, v := range []int{rgs.Version1, rgs.Version2} {
		b.Run(versionName(v), func(b *testing.B) {
			var out []byte
			b.ReportAllocs()
			for b.Loop() {
				var err error
				out, err = d.Encode(v)
				if err != nil {
					b.Fatal(err)
				}
			}
			raw, gz := sizes(out)
			b.ReportMetric(float64(raw), "bytes")
			b.ReportMetric(float64(gz), "gzip-bytes")
		})
	}
}

func BenchmarkDecodeMainnet(b *testing.B) {
	d := mainnetDelta()
	for _, v := range []int{rgs.Version1, rgs.Version2} {
		b.Run(versionName(v), func(b *testing.B) {
			in, err := d.Encode(v)
			if err != nil {
				b.Fatal(err)
			}
			for _, o := range []struct {
				name string
				opt  rgs.DecodeOptions
			}{{"strict", rgs.DecodeOptions{}}, {"skipkeycheck", rgs.DecodeOptions{SkipKeyCheck: true}}} {
				b.Run(o.name, func(b *testing.B) {
					b.SetBytes(int64(len(in)))
					b.ReportAllocs()
					for b.Loop() {
						f, err := o.opt.Decode(in)
						if err != nil {
							b.Fatal(err)
						}
						if len(f.Updates) != len(d.Updates) {
							b.Fatalf("%d updates, want %d", len(f.Updates), len(d.Updates))
						}
					}
				})
			}
		})
	}
}

func versionName(v int) string {
	if v == rgs.Version1 {
		return "v1"
	}
	return "v2"
}
