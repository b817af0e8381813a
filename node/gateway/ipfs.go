package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/car"
)

// Media types of the trustless gateway's responses.
const (
	mediaRaw = "application/vnd.ipld.raw"
	mediaCAR = "application/vnd.ipld.car"
)

// ipfs serves GET|HEAD /ipfs/<cid> as the IPFS trustless gateway
// specification describes: the block itself (?format=raw, Accept:
// application/vnd.ipld.raw) or a CARv1 of the DAG under it (?format=car,
// Accept: application/vnd.ipld.car, with dag-scope and entity-bytes).
// Blocks the node lacks are fetched from the cluster and verified.
func (s *Server) ipfs(w http.ResponseWriter, r *http.Request) {
	in, ok := s.guestIn(w, r, "")
	if !ok {
		return
	}
	c, err := cid.Decode(r.PathValue("cid"))
	if err != nil {
		fail(w, http.StatusBadRequest, fmt.Sprintf("/ipfs/%.100s: not a CID: %v", r.PathValue("cid"), err))
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", sandbox)
	if !maybeDDC(c) {
		s.serveDAG(w, r, c, in)
		return
	}
	p := strings.Trim(r.PathValue("path"), "/")
	format, status, err := wantFormat(r)
	if err != nil {
		fail(w, status, err.Error())
		return
	}
	h := w.Header()
	h.Set("X-Ipfs-Path", strings.TrimSuffix("/ipfs/"+c.String()+"/"+p, "/"))
	h.Set("X-Ipfs-Roots", c.String())
	h.Set("Vary", "Accept")
	caching(h, in, immutable)
	if p != "" {
		s.ipfsPath(w, r, c, p, in, format)
		return
	}
	if format == mediaRaw {
		s.rawBlock(w, r, c, in)
		return
	}
	s.carStream(w, r, c, in)
}

// maybeDDC reports whether c may be a ddc descriptor (a file or
// directory of ddc's own, which ddc's code walks: byte ranges of its
// files, paths through its directories). Other DAGs are boxo's
// (serveDAG); so is a DAG-CBOR block that does not decode as a
// descriptor, which ddc's code finds when it opens it (toDAG), so that
// a ddc file's request reads and decodes its root once.
func maybeDDC(c cid.Cid) bool {
	return c.Version() == 1 && c.Type() == pieces.CodecDagCBOR && pieces.CheckCID(c) == nil
}

// toDAG hands a request ddc's code began, for a DAG-CBOR root that is no
// ddc descriptor, to boxo's handler, without the headers ddc set for it.
func (s *Server) toDAG(w http.ResponseWriter, r *http.Request, c cid.Cid, in *node.In) {
	h := w.Header()
	for _, k := range []string{"Etag", "X-Ipfs-Path", "X-Ipfs-Roots", "Vary", "Cache-Control"} {
		h.Del(k)
	}
	s.serveDAG(w, r, c, in)
}

// wantFormat reads the response type from ?format=, which wins, or from
// Accept; it fails with 400 when neither asks for one this gateway gives
// and 406 when Accept asks only for CAR versions or orders it cannot give.
func wantFormat(r *http.Request) (string, int, error) {
	switch f := r.URL.Query().Get("format"); f {
	case "raw":
		return mediaRaw, 0, nil
	case "car":
		if v := r.URL.Query().Get("car-version"); v != "" && v != "1" {
			return "", http.StatusNotAcceptable, fmt.Errorf("car-version=%s: this gateway writes CARv1", v)
		}
		return mediaCAR, 0, nil
	case "":
	default:
		return "", http.StatusBadRequest, fmt.Errorf("format=%s: this trustless gateway gives raw or car", f)
	}
	best, bestQ, refused := "", 0.0, ""
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if qs, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(qs, 64); err != nil {
				continue
			}
		}
		switch {
		case q <= 0 || q <= bestQ:
		case mt == mediaRaw:
			best, bestQ = mediaRaw, q
		case mt == mediaCAR && carParamsOK(params):
			best, bestQ = mediaCAR, q
		case mt == mediaCAR:
			refused = part
		}
	}
	switch {
	case best != "":
		return best, 0, nil
	case refused != "":
		return "", http.StatusNotAcceptable, fmt.Errorf("Accept: %s: this gateway writes %s", strings.TrimSpace(refused), car.ContentType)
	}
	return "", http.StatusBadRequest, errors.New("this trustless gateway answers /ipfs/<cid> with ?format=raw or ?format=car " +
		"(or Accept: application/vnd.ipld.raw or application/vnd.ipld.car); a file's bytes are at /ddc/file/<cid>")
}

// carParamsOK reports whether the CAR this gateway writes satisfies what
// an Accept entry asks: version 1, depth-first (or any) order, either
// duplicates rule (a CAR without duplicates is what dups=y allows too).
func carParamsOK(p map[string]string) bool {
	v, o := p["version"], p["order"]
	return (v == "" || v == "1") && (o == "" || o == "dfs" || o == "unk")
}

// rawBlock answers with the block c, read in in.
func (s *Server) rawBlock(w http.ResponseWriter, r *http.Request, c cid.Cid, in *node.In) {
	h := w.Header()
	etag := `"` + c.String() + `.raw"`
	h.Set("Etag", etag)
	if noneMatch(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	ctx, stop := s.retrieval(r.Context())
	data, err := s.n.Block(ctx, c, in)
	stop()
	if err != nil {
		s.failErr(w, ctx, err, c.String())
		return
	}
	h.Set("Content-Type", mediaRaw)
	h.Set("Content-Disposition", attachment(r, c.String()+".bin"))
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

// carStream answers with a CAR of the DAG under c that the request's
// dag-scope and entity-bytes ask for, read in in, streamed as blocks
// arrive.
func (s *Server) carStream(w http.ResponseWriter, r *http.Request, c cid.Cid, in *node.In) {
	q := r.URL.Query()
	scope := q.Get("dag-scope")
	switch scope {
	case "":
		scope = "all"
	case "all", "entity", "block":
	default:
		fail(w, http.StatusBadRequest, fmt.Sprintf("dag-scope=%s: want all, entity or block", scope))
		return
	}
	bytesParam := q.Get("entity-bytes")
	var from, to int64
	var fromEnd, toEnd, toStar bool
	if bytesParam != "" {
		var err error
		if from, to, fromEnd, toEnd, toStar, err = parseEntityBytes(bytesParam); err != nil {
			fail(w, http.StatusBadRequest, err.Error())
			return
		}
		scope = "entity"
	}
	etag := fmt.Sprintf(`"%s.car.dfs.n.%s`, c, scope)
	if bytesParam != "" {
		etag += "." + bytesParam
	}
	etag += `"`
	h := w.Header()
	h.Set("Etag", etag)
	if noneMatch(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	ctx, stop := s.retrieval(r.Context())
	defer stop()
	header := func() {
		h.Set("Content-Type", car.ContentType)
		h.Set("Content-Disposition", attachment(r, c.String()+".car"))
		h.Set("Accept-Ranges", "none") // a CAR is asked for by DAG scope and entity-bytes, not byte ranges
		w.WriteHeader(http.StatusOK)
	}
	// A block, or a block ddc cannot walk (another codec, or dag-cbor
	// that is not a ddc descriptor), is a CAR of that one block.
	whole := func() {
		data, err := s.n.Block(ctx, c, in)
		if err != nil {
			s.failErr(w, ctx, err, c.String())
			return
		}
		stop()
		header()
		if r.Method == http.MethodHead {
			return
		}
		if err := car.WriteBlock(w, c, data); err != nil {
			s.log.Debug("car response cut short", "cid", c, "err", err)
		}
	}
	if scope == "block" || c.Type() != pieces.CodecDagCBOR {
		whole()
		return
	}
	rd := s.n.NewReaderIn(c, in)
	rd.Share()
	if err := rd.Open(ctx); err != nil {
		rd.Close()
		if errors.Is(err, pieces.ErrMalformed) {
			stop()
			s.toDAG(w, r, c, in)
			return
		}
		if errors.Is(err, pieces.ErrIsDir) {
			stop()
			s.carPath(w, r, c, "", in)
			return
		}
		s.failErr(w, ctx, err, c.String())
		return
	}
	defer s.closes.Go(func() { rd.Close() })
	rd.File.Budget = s.budget
	rd.File.ReadAhead = min(rd.File.ReadAhead, responseWindow)
	stop()
	sc := car.All
	if bytesParam != "" {
		size := rd.File.Size()
		if fromEnd {
			from = max(size+from, 0)
		}
		switch {
		case toStar:
			to = size
		case toEnd:
			to = size + to + 1
		default:
			to++ // inclusive in the request
		}
		if from >= size {
			fail(w, http.StatusBadRequest, fmt.Sprintf("entity-bytes=%s: %s holds %d bytes", bytesParam, c, size))
			return
		}
		sc = car.Scope{From: from, To: to} // an empty range gives the root alone
	}
	header()
	if r.Method == http.MethodHead {
		return
	}
	if err := car.WriteFile(w, rd.File, sc); err != nil {
		s.log.Warn("car response cut short", "cid", c, "err", err)
		panic(http.ErrAbortHandler) // the client must see the CAR is incomplete
	}
}

// attachment is the Content-Disposition of a trustless response: the
// client's ?filename= or name, quoted, with its RFC 5987 form when it is
// not plain ASCII.
func attachment(r *http.Request, name string) string {
	if f := r.URL.Query().Get("filename"); f != "" {
		name = f
	}
	plain := strings.Map(func(c rune) rune {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return '_'
		}
		return c
	}, name)
	if plain == name {
		return `attachment; filename="` + name + `"`
	}
	return `attachment; filename="` + plain + `"; filename*=UTF-8''` + url.PathEscape(name)
}

// parseEntityBytes reads from:to, where from and to are byte offsets
// (negative: from the end) and to may be * (the end); to is inclusive.
func parseEntityBytes(v string) (from, to int64, fromEnd, toEnd, toStar bool, err error) {
	a, b, ok := strings.Cut(v, ":")
	if !ok {
		return 0, 0, false, false, false, fmt.Errorf("entity-bytes=%s: want from:to", v)
	}
	if from, err = strconv.ParseInt(a, 10, 64); err != nil {
		return 0, 0, false, false, false, fmt.Errorf("entity-bytes=%s: from %q is not an integer", v, a)
	}
	fromEnd = from < 0
	if b == "*" {
		return from, 0, fromEnd, false, true, nil
	}
	if to, err = strconv.ParseInt(b, 10, 64); err != nil {
		return 0, 0, false, false, false, fmt.Errorf("entity-bytes=%s: to %q is not an integer or *", v, b)
	}
	toEnd = to < 0
	if !fromEnd && !toEnd && to < from {
		return 0, 0, false, false, false, fmt.Errorf("entity-bytes=%s: to is before from", v)
	}
	return from, to, fromEnd, toEnd, false, nil
}
