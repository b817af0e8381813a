package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	boxogw "github.com/ipfs/boxo/gateway"
	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/car"
)

// ddcCAR reports the scope of a trustless CAR that ddc writes itself
// for a DAG that is not ddc's: "all" for the whole DAG under a root (no
// entity-bytes), "entity" for a range of a UnixFS file (dag-scope=entity,
// with or without entity-bytes); "" for anything else, which is boxo's.
// Either way there is no path and no ?filename=, and it is CARv1,
// depth-first or any order, without duplicates, by ?format=car or by an
// Accept of that one type. ddc's walks (car.WriteDAG, WriteRange) write
// a 1 GiB UnixFS file's CAR at 2.7× boxo's rate and a 64 KiB range of it
// in under half its time (boxo hashes every block again, reads it with a
// growing buffer and resolves the path through a UnixFS resolver); boxo
// answers every other combination the spec allows.
func ddcCAR(r *http.Request) string {
	q := r.URL.Query()
	if strings.Trim(r.PathValue("path"), "/") != "" || q.Has("filename") {
		return ""
	}
	for k, ok := range map[string][]string{
		"car-dups": {"", "n"}, "car-order": {"", "dfs", "unk"}, "car-version": {"", "1"},
	} {
		if !slices.Contains(ok, q.Get(k)) {
			return ""
		}
	}
	scope := ""
	switch q.Get("dag-scope") {
	case "", "all":
		if !q.Has("entity-bytes") {
			scope = "all"
		}
	case "entity":
		scope = "entity"
	}
	if scope == "" || !plainCARAccept(q.Get("format"), strings.TrimSpace(r.Header.Get("Accept"))) {
		return ""
	}
	return scope
}

// plainCARAccept reports whether ?format= and Accept ask for a CARv1,
// depth-first or any order, without duplicates, and for nothing else.
func plainCARAccept(format, accept string) bool {
	switch format {
	case "car":
		return accept == "" || !strings.Contains(accept, "vnd.ipld")
	case "":
	default:
		return false
	}
	if strings.Contains(accept, ",") {
		return false
	}
	mt, params, err := mime.ParseMediaType(accept)
	if err != nil || mt != mediaCAR {
		return false
	}
	for k, v := range params {
		switch {
		case k == "version" && v == "1", k == "order" && (v == "dfs" || v == "unk"), k == "dups" && v == "n":
		default:
			return false
		}
	}
	return true
}

// serveDDCCAR answers a ddcCAR request for root, whose block data g
// read, if ddc's walks write its CAR, and reports whether they did: the
// whole DAG always, a range only of a UnixFS file laid out by its sizes
// (car.ErrNotPlainFile found before a byte went out leaves it to boxo).
func (s *Server) serveDDCCAR(dw *dagWriter, r *http.Request, ctx context.Context, root cid.Cid, data []byte, g pieces.Getter) bool {
	if ddcCAR(r) == "all" {
		return !s.writeCAR(dw, r, root, "all", func(w io.Writer) error { return car.WriteDAG(ctx, w, g, root) })
	}
	f, err := car.OpenUnixFSFile(root, data)
	if err != nil {
		return false
	}
	from, to, asked, ok := fileRange(r.URL.Query(), f.Size())
	if !ok {
		return false
	}
	return !s.writeCAR(dw, r, root, "entity"+asked, func(w io.Writer) error { return f.WriteRange(ctx, w, g, from, to) })
}

// fileRange is the bytes from..to (inclusive; to may pass the end) of a
// file of size bytes that ?entity-bytes= asks for, read as boxo reads
// it (negative: from the end; none: all of it), and the range as asked,
// written one way (".from:to", "" for none) for the Etag. It is not ok
// for entity-bytes that boxo refuses or answers with an error, which
// boxo is left to answer.
func fileRange(q url.Values, size int64) (from, to int64, asked string, ok bool) {
	if !q.Has("entity-bytes") {
		return 0, math.MaxInt64, "", true
	}
	rng, err := boxogw.NewDagByteRange(q.Get("entity-bytes"))
	if err != nil {
		return 0, 0, "", false
	}
	from, to, asked = rng.From, math.MaxInt64, fmt.Sprintf(".%d:*", rng.From)
	if from < 0 {
		from = max(size+from, 0)
	}
	if rng.To != nil {
		to, asked = *rng.To, fmt.Sprintf(".%d:%d", rng.From, *rng.To)
		if to < 0 {
			to += size
		}
	}
	return from, to, asked, to >= from-1
}

// writeCAR answers a CAR request for root (as asked: a CIDv0 stays one)
// with the CAR write writes, with the headers the spec and boxo write
// (scope names the DAG's part in the Etag). It writes through dw, so a
// block refused or missing in the first 64 KiB is answered with its own
// status, and one after them aborts the connection: the client sees the
// CAR is cut short. When write fails with car.ErrNotPlainFile before
// anything was sent, it takes back what it set and reports true: the
// request is left to boxo.
func (s *Server) writeCAR(dw *dagWriter, r *http.Request, root cid.Cid, scope string, write func(io.Writer) error) (handed bool) {
	h := dw.Header()
	before := h.Clone() // what a hand-back to boxo goes back to
	etag := fmt.Sprintf(`"%s.car.dfs.n.%s"`, root, scope)
	h.Set("Etag", etag)
	h.Set("X-Ipfs-Path", "/ipfs/"+root.String())
	h.Set("X-Ipfs-Roots", root.String())
	h.Set("Cache-Control", "public, "+immutable) // dw makes it private, no-store for a grant's read
	if noneMatch(r.Header.Get("If-None-Match"), etag) {
		dw.WriteHeader(http.StatusNotModified)
		dw.send()
		return false
	}
	h.Set("Content-Type", car.ContentType)
	h.Set("Content-Disposition", attachment(r, root.String()+".car"))
	h.Set("Accept-Ranges", "none")
	dw.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		dw.send()
		return false
	}
	err := write(dw)
	switch {
	case err == nil:
		dw.send()
	case errors.Is(err, car.ErrNotPlainFile) && !dw.sent:
		s.log.Debug("car range left to boxo", "cid", root, "err", err)
		dw.reset(before)
		return true
	case !dw.sent:
		dw.refuse(err)
	default:
		s.log.Warn("car response cut short", "cid", root, "err", err)
		panic(http.ErrAbortHandler)
	}
	return false
}
