package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/ipfs/go-cid"
)

// Deleted is what POST /rm/{cid} answers: the nodes told to drop the
// file, and what went wrong telling the others.
type Deleted struct {
	CID   string   `json:"cid"`
	Told  []string `json:"told"`
	Error string   `json:"error,omitempty"`
}

// remove answers POST /rm/{cid}?bucket=ID: the file is deleted from the
// bucket here and at the nodes that keep it (node.Delete).
func (s *Server) remove(w http.ResponseWriter, r *http.Request) {
	c, in, ok := s.cidIn(w, r)
	if !ok {
		return
	}
	if in == nil {
		s.fail(w, fmt.Errorf("%w: rm: no bucket (?bucket=ID): a file is deleted from a bucket", ErrUsage))
		return
	}
	told, err := s.n.Delete(r.Context(), in, c)
	if err != nil && told == nil {
		s.fail(w, err)
		return
	}
	d := Deleted{CID: c.String(), Told: peerStrings(told)}
	if err != nil {
		d.Error = err.Error()
	}
	s.reply(w, d)
}

// Delete deletes k from the client's bucket, here and at its keepers.
func (c *Client) Delete(ctx context.Context, k cid.Cid) (Deleted, error) {
	var d Deleted
	return d, c.callJSON(ctx, http.MethodPost, "/rm/"+k.String(), nil, &d)
}
