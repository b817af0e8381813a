package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/store"
)

// Pin is a pinned root, as GET /pin/ls lists it.
type Pin struct {
	CID    string    `json:"cid"`
	Pinned time.Time `json:"pinned"`
}

// Pins lists the pins of the open repo r, for the API and offline alike.
func Pins(ctx context.Context, r *repo.Repo) ([]Pin, error) {
	pins := []Pin{}
	err := r.Store.Pins(ctx, func(c cid.Cid, at time.Time) error {
		pins = append(pins, Pin{CID: c.String(), Pinned: at})
		return nil
	})
	return pins, err
}

// Unpin removes the pin of c from the open repo r; it fails, naming c,
// when c is not pinned.
func Unpin(r *repo.Repo, c cid.Cid) error {
	pinned, err := r.Store.Pinned(c)
	if err != nil {
		return err
	}
	if !pinned {
		return fmt.Errorf("%w: %s is not pinned", pieces.ErrNotFound, c)
	}
	return r.Store.Unpin(c)
}

// GCResult is what POST /repo/gc returns.
type GCResult struct {
	Live       int     `json:"live_pieces"`
	Removed    int     `json:"removed_pieces"`
	FreedBytes uint64  `json:"freed_bytes"`
	Seconds    float64 `json:"seconds"`
}

// CollectGarbage runs a GC on the open repo r, for the API and offline.
func CollectGarbage(ctx context.Context, r *repo.Repo) (GCResult, error) {
	res, err := r.Store.GC(ctx)
	return gcResult(res), err
}

func gcResult(res store.GCResult) GCResult {
	return GCResult{Live: res.Live, Removed: res.Removed, FreedBytes: res.Freed, Seconds: res.Duration.Seconds()}
}

func (s *Server) pinAdd(w http.ResponseWriter, r *http.Request) {
	c, err := pathCID(r)
	if err == nil {
		err = s.n.Pin(r.Context(), c)
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	s.reply(w, Pin{CID: c.String(), Pinned: time.Now()})
}

func (s *Server) pinRm(w http.ResponseWriter, r *http.Request) {
	c, err := pathCID(r)
	if err == nil {
		err = Unpin(s.n.Repo(), c)
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	s.reply(w, Pin{CID: c.String()})
}

func (s *Server) pinLs(w http.ResponseWriter, r *http.Request) {
	pins, err := Pins(r.Context(), s.n.Repo())
	if err != nil {
		s.fail(w, err)
		return
	}
	s.reply(w, pins)
}

func (s *Server) repoGC(w http.ResponseWriter, r *http.Request) {
	res, err := s.n.GC(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	s.reply(w, gcResult(res))
}

// PinAdd has the node pin c, fetching what it lacks of it first.
func (c *Client) PinAdd(ctx context.Context, k cid.Cid) error {
	return c.callJSON(ctx, http.MethodPost, "/pin/add/"+k.String(), nil, &Pin{})
}

// PinRm removes the node's pin of k.
func (c *Client) PinRm(ctx context.Context, k cid.Cid) error {
	return c.callJSON(ctx, http.MethodPost, "/pin/rm/"+k.String(), nil, &Pin{})
}

// PinLs lists the node's pins.
func (c *Client) PinLs(ctx context.Context) ([]Pin, error) {
	var pins []Pin
	return pins, c.getJSON(ctx, "/pin/ls", nil, &pins)
}

// RepoGC has the node collect the pieces no root reaches.
func (c *Client) RepoGC(ctx context.Context) (GCResult, error) {
	var res GCResult
	return res, c.callJSON(ctx, http.MethodPost, "/repo/gc", nil, &res)
}
