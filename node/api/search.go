package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/pieces"
)

// SearchResult is a file found: its descriptor's CID, size and tags.
type SearchResult struct {
	CID  string       `json:"cid"`
	Size uint64       `json:"size"`
	Tags []pieces.Tag `json:"tags"`
}

// SearchAnswer is a page of search results and how complete it is.
type SearchAnswer struct {
	Results  []SearchResult  `json:"results"`
	Cursor   string          `json:"cursor,omitempty"` // for the next page; none after the last
	Holders  int             `json:"holders"`          // other holders of the bucket found
	Answered int             `json:"answered"`         // of them, those that answered in time
	Partial  bool            `json:"partial"`
	Failures []SearchFailure `json:"failures,omitempty"`
}

// SearchFailure is a holder that did not answer, and why.
type SearchFailure struct {
	Peer  string `json:"peer"`
	Error string `json:"error"`
}

// Answer is a node's search answer as the API sends it.
func Answer(a node.SearchAnswer) SearchAnswer {
	out := SearchAnswer{Results: make([]SearchResult, len(a.Results)), Cursor: a.Cursor,
		Holders: a.Holders, Answered: a.Answered, Partial: a.Partial}
	for i, r := range a.Results {
		out.Results[i] = SearchResult{CID: r.CID.String(), Size: r.Size, Tags: r.Tags}
	}
	for _, f := range a.Failures {
		out.Failures = append(out.Failures, SearchFailure{Peer: f.Peer.String(), Error: f.Error})
	}
	return out
}

// SearchQuery is what a search asks, as a query string carries it.
type SearchQuery struct {
	Terms   []string
	Cursor  string
	Limit   int           // the node's default when 0
	Timeout time.Duration // the node's default when 0
}

func (sq SearchQuery) values() url.Values {
	v := url.Values{"term": sq.Terms}
	if sq.Cursor != "" {
		v.Set("cursor", sq.Cursor)
	}
	if sq.Limit != 0 {
		v.Set("limit", strconv.Itoa(sq.Limit))
	}
	if sq.Timeout != 0 {
		v.Set("timeout", sq.Timeout.String())
	}
	return v
}

func searchRequest(r *http.Request) (node.SearchRequest, error) {
	in, err := requestIn(r)
	if err != nil {
		return node.SearchRequest{}, err
	}
	q := r.URL.Query()
	req := node.SearchRequest{In: in, Terms: q["term"], Cursor: q.Get("cursor")}
	if s := q.Get("limit"); s != "" {
		if req.Limit, err = strconv.Atoi(s); err != nil {
			return req, usagef("limit=%q is not a number", s)
		}
	}
	if s := q.Get("timeout"); s != "" {
		if req.Timeout, err = time.ParseDuration(s); err != nil {
			return req, usagef("timeout=%q is not a duration (e.g. 2s)", s)
		}
	}
	return req, nil
}

func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	req, err := searchRequest(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	a, err := s.n.Search(r.Context(), req)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.reply(w, Answer(a))
}

// Search searches the node's index and, with In, the bucket's holders.
func (c *Client) Search(ctx context.Context, sq SearchQuery) (SearchAnswer, error) {
	var a SearchAnswer
	return a, c.getJSON(ctx, "/search", sq.values(), &a)
}
