// A minimal keepalived exporter on client_golang, for BENCHMARKS.md's memory comparison only:
// what keepalived-exporter (mehdy/keepalived-exporter, Go, client_golang) does in its --ka.json
// mode, reduced to the part every such exporter needs. On each scrape it sends keepalived
// SIGJSON, reads $TMPDIR/keepalived.json and exposes keepalived_up, keepalived_vrrp_state and
// the 14 stats counters under keepalived-exporter's names. The real exporters do more (text
// mode, scripts, container modes), so its memory is a floor for theirs, not their figure.
//
//   go build -o exporter-floor main.go   (GOPATH=/usr/share/gocode GO111MODULE=off, Debian's client_golang)
//   exporter-floor KEEPALIVED_PID LISTEN TMPDIR
package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type instance struct {
	Data struct {
		Iname  string   `json:"iname"`
		Ifname string   `json:"ifp_ifname"`
		Vrid   int      `json:"vrid"`
		State  int      `json:"state"`
		Vips   []string `json:"vips"`
	} `json:"data"`
	Stats map[string]float64 `json:"stats"`
}

var counters = map[string]string{
	"advert_rcvd": "keepalived_advertisements_received_total", "advert_sent": "keepalived_advertisements_sent_total",
	"become_master": "keepalived_become_master_total", "release_master": "keepalived_release_master_total",
	"packet_len_err": "keepalived_packet_length_errors_total", "advert_interval_err": "keepalived_advertisements_interval_errors_total",
	"ip_ttl_err": "keepalived_ip_ttl_errors_total", "invalid_type_rcvd": "keepalived_invalid_type_received_total",
	"addr_list_err": "keepalived_address_list_errors_total", "invalid_authtype": "keepalived_authentication_invalid_total",
	"authtype_mismatch": "keepalived_authentication_mismatch_total", "auth_failure": "keepalived_authentication_failure_total",
	"pri_zero_rcvd": "keepalived_priority_zero_received_total", "pri_zero_sent": "keepalived_priority_zero_sent_total",
}

type collector struct {
	pid   int
	file  string
	up    *prometheus.Desc
	state *prometheus.Desc
	descs map[string]*prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.state
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	var instances []instance
	err := syscall.Kill(c.pid, syscall.Signal(36))
	if err == nil {
		time.Sleep(100 * time.Millisecond)
		var raw []byte
		if raw, err = os.ReadFile(c.file); err == nil {
			err = json.Unmarshal(raw, &instances)
		}
	}
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	for _, i := range instances {
		vrid := strconv.Itoa(i.Data.Vrid)
		for _, vip := range i.Data.Vips {
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, float64(i.Data.State), i.Data.Iname, i.Data.Ifname, vrid, vip)
		}
		for key, desc := range c.descs {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, i.Stats[key], i.Data.Iname, i.Data.Ifname, vrid)
		}
	}
}

func main() {
	pid, _ := strconv.Atoi(os.Args[1])
	labels := []string{"iname", "intf", "vrid"}
	c := &collector{
		pid: pid, file: filepath.Join(os.Args[3], "keepalived.json"),
		up:    prometheus.NewDesc("keepalived_up", "Status", nil, nil),
		state: prometheus.NewDesc("keepalived_vrrp_state", "State of vrrp", append(labels, "ip_address"), nil),
		descs: map[string]*prometheus.Desc{},
	}
	for key, name := range counters {
		c.descs[key] = prometheus.NewDesc(name, key, labels, nil)
	}
	prometheus.MustRegister(c)
	http.Handle("/metrics", promhttp.Handler())
	if err := http.ListenAndServe(os.Args[2], nil); err != nil {
		os.Exit(1)
	}
}
