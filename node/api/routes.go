package api

import (
	"net/http"
	"net/http/pprof"
)

// routes maps the API's paths, all under /api/v1 but the metrics and the
// profiles, which sit at Kubo's paths.
func (s *Server) routes() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /api/v1/id", s.id)
	m.HandleFunc("GET /api/v1/peers", s.peers)
	m.HandleFunc("POST /api/v1/connect", s.connect)
	m.HandleFunc("GET /api/v1/providers/{cid}", s.providers)
	m.HandleFunc("POST /api/v1/put", s.put)
	m.HandleFunc("POST /api/v1/put/tree", s.putTree)
	m.HandleFunc("GET /api/v1/tree/{cid}", s.tree)
	m.HandleFunc("POST /api/v1/tree/{cid}", s.tree) // pin=true needs POST
	m.HandleFunc("GET /api/v1/dir/{cid}", s.dir)
	m.HandleFunc("POST /api/v1/compose", s.compose)
	m.HandleFunc("POST /api/v1/replicate/{cid}", s.replicate)
	m.HandleFunc("POST /api/v1/rm/{cid}", s.remove)
	m.HandleFunc("GET /api/v1/cat/{cid}", s.cat)
	m.HandleFunc("POST /api/v1/cat/{cid}", s.cat) // pin=true needs POST
	m.HandleFunc("GET /api/v1/stat/{cid}", s.stat)
	m.HandleFunc("GET /api/v1/holders/{cid}", s.holders)
	m.HandleFunc("GET /api/v1/ls", s.ls)
	m.HandleFunc("GET /api/v1/export/{cid}", s.export)
	m.HandleFunc("POST /api/v1/import", s.importCAR)
	m.HandleFunc("GET /api/v1/search", s.search)
	m.HandleFunc("GET /api/v1/downloads", s.listDownloads)
	m.HandleFunc("GET /api/v1/repo/stat", s.repoStat)
	m.HandleFunc("GET /api/v1/repo/verify", s.repoVerify)
	m.HandleFunc("POST /api/v1/repo/reindex", s.repoReindex)
	m.HandleFunc("POST /api/v1/repo/gc", s.repoGC)
	m.HandleFunc("POST /api/v1/pin/add/{cid}", s.pinAdd)
	m.HandleFunc("POST /api/v1/pin/rm/{cid}", s.pinRm)
	m.HandleFunc("GET /api/v1/pin/ls", s.pinLs)
	m.HandleFunc("POST /api/v1/node/stop", s.nodeStop)
	m.Handle("GET /debug/metrics/prometheus", s.n.MetricsHandler()) // Kubo's path: scrape configs carry over
	// Go's profiles, as Kubo serves them: go tool pprof API/debug/pprof/profile.
	m.HandleFunc("GET /debug/pprof/", pprof.Index)
	m.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	m.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	m.HandleFunc("GET /api/v1/bucket/{id}", s.bucketInfo)
	m.HandleFunc("POST /api/v1/bucket/{id}/publish", s.publishBucket)
	m.HandleFunc("POST /api/v1/name/publish", s.publishName) // names.go
	m.HandleFunc("GET /api/v1/name/resolve", s.resolveName)
	m.HandleFunc("GET /api/v1/name/log", s.nameLog)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, usagef("no route %s %s", r.Method, r.URL.Path))
	})
	return m
}
