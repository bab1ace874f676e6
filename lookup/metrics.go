package lookup

import "github.com/prometheus/client_golang/prometheus"

var (
	trimmedDesc = prometheus.NewDesc("lnsync_lookup_trimmed_node_announcements_total",
		"Node announcements read into the index whose addresses were trimmed to fit the RGS format.", nil, nil)
	droppedDesc = prometheus.NewDesc("lnsync_lookup_dropped_addresses_total",
		"Addresses left out of RGS node entries: longer than 255 bytes, or beyond the first 255 of an announcement.",
		[]string{"reason"}, nil)
)

// Collector returns the Index's metrics for the caller to register: what
// peers announced that the RGS format cannot carry, and so was trimmed
// instead of failing a generation. Counts grow each time the rows are read,
// including after a reload.
func (x *Index) Collector() prometheus.Collector { return indexCollector{x} }

type indexCollector struct{ x *Index }

func (c indexCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- trimmedDesc
	ch <- droppedDesc
}

func (c indexCollector) Collect(ch chan<- prometheus.Metric) {
	t := &c.x.trimmed
	ch <- prometheus.MustNewConstMetric(trimmedDesc, prometheus.CounterValue, float64(t.announcements.Load()))
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(t.tooLong.Load()), "longer_than_255_bytes")
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(t.tooMany.Load()), "beyond_255_addresses")
}
