package httpapi

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"runtime"
	"strconv"
)

// statsResponse is the body of GET /stats: figures about this process, for load
// tests and operators, plus whatever the runtime reports about itself.
type statsResponse struct {
	RSSBytes       int64 `json:"rss_bytes,omitempty"`
	HeapInuseBytes int64 `json:"heap_inuse_bytes"`
	Goroutines     int   `json:"goroutines"`
	Runtime        any   `json:"runtime,omitempty"`
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) error {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	res := statsResponse{
		RSSBytes:       residentBytes(),
		HeapInuseBytes: int64(m.HeapInuse),
		Goroutines:     runtime.NumGoroutine(),
	}
	if s.cfg.Stats != nil {
		res.Runtime = s.cfg.Stats()
	}
	s.writeJSON(w, http.StatusOK, res)
	return nil
}

// residentBytes reads the process's resident set size from /proc (Linux); 0
// where that is not available.
func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(rest) // "12345 kB"
			if len(f) == 2 {
				if kb, err := strconv.ParseInt(string(f[0]), 10, 64); err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}
