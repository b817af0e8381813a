package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/car"
)

// ipfsPath answers /ipfs/<root>/<path> through ddc directories: the
// terminal block for raw, else a CAR of the blocks along the path and
// the terminal entity (carPath).
func (s *Server) ipfsPath(w http.ResponseWriter, r *http.Request, root cid.Cid, p string, in *node.In, format string) {
	if format == mediaCAR {
		s.carPath(w, r, root, p, in)
		return
	}
	ctx, stop := s.retrieval(r.Context())
	l, _, err := s.n.ResolveIn(ctx, root, p, in)
	stop()
	if errors.Is(err, pieces.ErrMalformed) { // DAG-CBOR of another kind: boxo paths through its fields
		s.toDAG(w, r, root, in)
		return
	}
	if err != nil {
		s.failPath(w, ctx, err, root, p)
		return
	}
	s.rawBlock(w, r, l.CID, in)
}

// failPath answers a path that does not resolve with 404, and any other
// failure as failErr does.
func (s *Server) failPath(w http.ResponseWriter, ctx context.Context, err error, root cid.Cid, p string) {
	what := root.String() + "/" + p
	if errors.Is(err, pieces.ErrNoEntry) || errors.Is(err, pieces.ErrNotDir) {
		fail(w, http.StatusNotFound, fmt.Sprintf("/ipfs/%s: no such file or folder", what))
		return
	}
	s.failErr(w, ctx, err, what)
}

// carPath answers with a CAR of the blocks that resolve p under root (p
// empty: root is a directory) and of the entity it ends at, as dag-scope
// and entity-bytes say: block, the terminal's own block; entity, a
// file's blocks (in range) or a directory's own pieces; all, a file's
// blocks or a directory's whole tree.
func (s *Server) carPath(w http.ResponseWriter, r *http.Request, root cid.Cid, p string, in *node.In) {
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
	ctx, stop := s.retrieval(r.Context())
	defer stop()
	l, _, err := s.n.ResolveIn(ctx, root, p, in) // the access rule, and the path, before any byte is sent
	if errors.Is(err, pieces.ErrMalformed) {
		stop()
		s.toDAG(w, r, root, in)
		return
	}
	if err != nil {
		s.failPath(w, ctx, err, root, p)
		return
	}
	sc := car.All
	switch {
	case scope == "block":
		sc = car.Scope{Block: true}
	case q.Get("entity-bytes") != "":
		size := int64(l.Size)
		if l.CID == root { // the root's own size is no link's: read it
			st, err := s.n.StatIn(ctx, root, in)
			if err != nil && !errors.Is(err, pieces.ErrIsDir) {
				s.failErr(w, ctx, err, root.String())
				return
			}
			size = int64(st.Size)
		}
		from, to, err := entityRange(q.Get("entity-bytes"), size)
		if err != nil {
			fail(w, http.StatusBadRequest, fmt.Sprintf("%s (%s)", err, l.CID))
			return
		}
		sc, scope = car.Scope{From: from, To: to}, "entity"
	}
	etag := fmt.Sprintf(`"%s/%s.car.dfs.n.%s.%s"`, root, p, scope, q.Get("entity-bytes"))
	h := w.Header()
	h.Set("Etag", etag)
	if noneMatch(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	stop()
	h.Set("Content-Type", car.ContentType)
	h.Set("Content-Disposition", attachment(r, l.CID.String()+".car"))
	h.Set("Accept-Ranges", "none")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if err := s.n.PathCAR(r.Context(), w, root, p, in, sc, scope == "all"); err != nil {
		s.log.Warn("car response cut short", "cid", root, "path", p, "err", err)
		panic(http.ErrAbortHandler) // the client must see the CAR is incomplete
	}
}

// entityRange turns entity-bytes into [from, to) of an entity of size
// bytes, as carStream reads it.
func entityRange(v string, size int64) (int64, int64, error) {
	from, to, fromEnd, toEnd, toStar, err := parseEntityBytes(v)
	if err != nil {
		return 0, 0, err
	}
	if fromEnd {
		from = max(size+from, 0)
	}
	switch {
	case toStar:
		to = size
	case toEnd:
		to = size + to + 1
	default:
		to++
	}
	if from >= size && size > 0 {
		return 0, 0, fmt.Errorf("entity-bytes=%s: the entity holds %d bytes", v, size)
	}
	return from, to, nil
}
