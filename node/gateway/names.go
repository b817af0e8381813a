package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/node"
)

// name serves GET|HEAD /ddc/name/<bucket>/<name>: the file the newest
// version of a bucket's name maps to, through the same access rule as
// the bucket's files (a private bucket's names resolve only with a
// grant). <bucket> may be an account (did:key:…) for an account's name.
func (s *Server) name(w http.ResponseWriter, r *http.Request) {
	scope, rest := r.PathValue("scope"), r.PathValue("name")
	q := node.NameQuery{Name: rest}
	bid := scope
	if strings.HasPrefix(scope, "did:key:") {
		k, err := bucket.ParsePublicKey(scope)
		if err != nil {
			fail(w, http.StatusBadRequest, err.Error())
			return
		}
		q.Account, bid = &k, ""
	}
	in, ok := s.guestIn(w, r, bid)
	if !ok {
		return
	}
	if q.Account == nil && !strings.HasPrefix(scope, "ddcb") {
		fail(w, http.StatusBadRequest, fmt.Sprintf("/ddc/name/%.80s: want a bucket (ddcb…) or an account (did:key:…) before the name", scope))
		return
	}
	q.In = in
	what := fmt.Sprintf("name %q", rest)
	ctx, stop := s.retrieval(r.Context())
	c, sub, err := s.resolvePath(ctx, q)
	stop()
	switch {
	case err == nil && sub != "":
		s.serveEntry(w, r, c, sub, in, mutableCache) // a path into the directory the name maps to
		return
	case errors.Is(err, node.ErrNoName) && ctx.Err() == nil:
		fail(w, http.StatusNotFound, what+": no record of it")
		return
	case err != nil:
		s.failErr(w, ctx, err, what)
		return
	}
	s.serveFile(w, r, c, in, path.Base(rest), mutableCache)
}

// resolvePath resolves q's name. When no version of it exists, it tries
// the names of the path's leading segments, longest first, and returns
// the first that resolves with the rest of the path after it: the hook
// for paths into directories a name maps to.
func (s *Server) resolvePath(ctx context.Context, q node.NameQuery) (cid.Cid, string, error) {
	full := q.Name
	res, err := s.n.ResolveName(ctx, q, false)
	if err == nil || !errors.Is(err, node.ErrNoName) {
		return res.Record.Value, "", err
	}
	name := bucket.NormalizeName(full)
	for i := strings.LastIndex(name, "/"); i > 0; i = strings.LastIndex(name[:i], "/") {
		q.Name = name[:i]
		if pre, perr := s.n.ResolveName(ctx, q, false); perr == nil {
			return pre.Record.Value, name[i+1:], nil
		} else if !errors.Is(perr, node.ErrNoName) {
			return cid.Undef, "", perr
		}
	}
	return cid.Undef, "", err
}
