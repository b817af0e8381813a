package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/pieces"
)

// NameInfo is a name record as the API and the CLI show it.
type NameInfo struct {
	Name    string    `json:"name"`
	Bucket  string    `json:"bucket,omitempty"`  // a bucket's name
	Account string    `json:"account,omitempty"` // an account's name
	CID     string    `json:"cid"`
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Signer  string    `json:"signer"`
	Prev    string    `json:"prev,omitempty"`   // the record of the version before
	Record  string    `json:"record"`           // this record's CID
	Source  string    `json:"source,omitempty"` // where a resolve found it: cache, kept or dht
	Granted bool      `json:"granted,omitempty"`
}

// NameInfoOf describes r.
func NameInfoOf(r bucket.NameRecord) NameInfo {
	i := NameInfo{Name: r.Name, CID: r.Value.String(), Seq: r.Seq, Time: r.Time.UTC(), Signer: r.Signer.String(), Record: r.CID().String(), Granted: r.Token != ""}
	if r.InBucket() {
		i.Bucket = r.Bucket.String()
	} else {
		i.Account = r.Signer.String()
	}
	if r.Prev.Defined() {
		i.Prev = r.Prev.String()
	}
	return i
}

// NamePublished is what POST /name/publish answers.
type NamePublished struct {
	NameInfo
	Unrooted int    `json:"unrooted,omitempty"` // CIDs of earlier versions a prune let go here
	Warning  string `json:"warning,omitempty"`
}

// NameLog is what GET /name/log answers: the versions, newest first,
// and why the walk stopped early when it did.
type NameLog struct {
	Versions []NameInfo `json:"versions"`
	Error    string     `json:"error,omitempty"`
}

// nameQuery reads ?bucket= (and the token header), ?account=, ?key= and
// ?name=.
func nameQuery(r *http.Request) (node.NameQuery, error) {
	in, err := requestIn(r)
	if err != nil {
		return node.NameQuery{}, err
	}
	q := node.NameQuery{In: in, Name: r.URL.Query().Get("name"), Key: r.URL.Query().Get("key")}
	if a := r.URL.Query().Get("account"); a != "" {
		k, err := bucket.ParsePublicKey(a)
		if err != nil {
			return q, err
		}
		q.Account = &k
	}
	if q.Name == "" {
		return q, usagef("no name (?name=)")
	}
	return q, nil
}

// publishName answers POST /name/publish?name=&cid=[&seq=][&prune=true].
func (s *Server) publishName(w http.ResponseWriter, r *http.Request) {
	q, err := nameQuery(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	p := node.Publish{NameQuery: q, Prune: r.URL.Query().Get("prune") == "true"}
	if p.Value, err = pieces.ParseCID(r.URL.Query().Get("cid")); err != nil {
		s.fail(w, err)
		return
	}
	if v := r.URL.Query().Get("seq"); v != "" {
		if p.Seq, err = strconv.ParseUint(v, 10, 64); err != nil || p.Seq == 0 {
			s.fail(w, usagef("seq %q: want a whole number above 0", v))
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), providersTimeout)
	defer cancel()
	out, err := s.n.PublishName(ctx, p)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.reply(w, NamePublished{NameInfo: NameInfoOf(out.Record), Unrooted: out.Unrooted, Warning: out.Warning})
}

// resolveName answers GET /name/resolve?name=[&fresh=true].
func (s *Server) resolveName(w http.ResponseWriter, r *http.Request) {
	q, err := nameQuery(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), providersTimeout)
	defer cancel()
	res, err := s.n.ResolveName(ctx, q, r.URL.Query().Get("fresh") == "true")
	if err != nil {
		s.fail(w, err)
		return
	}
	i := NameInfoOf(res.Record)
	i.Source = res.Source
	s.reply(w, i)
}

// nameLog answers GET /name/log?name=.
func (s *Server) nameLog(w http.ResponseWriter, r *http.Request) {
	q, err := nameQuery(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), providersTimeout)
	defer cancel()
	rs, err := s.n.NameLog(ctx, q)
	if err != nil && len(rs) == 0 {
		s.fail(w, err)
		return
	}
	out := NameLog{Versions: []NameInfo{}}
	for _, rec := range rs {
		out.Versions = append(out.Versions, NameInfoOf(rec))
	}
	if err != nil {
		out.Error = err.Error()
	}
	s.reply(w, out)
}

// NameArgs are the name a client call is about: the client's bucket
// (see In) or, without one, Account's name or the key Key's.
type NameArgs struct {
	Name, Account, Key string
}

func (a NameArgs) values() url.Values {
	v := url.Values{"name": {a.Name}}
	if a.Account != "" {
		v.Set("account", a.Account)
	}
	if a.Key != "" {
		v.Set("key", a.Key)
	}
	return v
}

// PublishName has the node sign and publish a version of a name mapping
// to c; seq 0 is the next one; prune starts the history anew.
func (c *Client) PublishName(ctx context.Context, a NameArgs, value string, seq uint64, prune bool) (NamePublished, error) {
	v := a.values()
	v.Set("cid", value)
	if seq != 0 {
		v.Set("seq", strconv.FormatUint(seq, 10))
	}
	if prune {
		v.Set("prune", "true")
	}
	var out NamePublished
	return out, c.callJSON(ctx, http.MethodPost, "/name/publish", v, &out)
}

// ResolveName asks the node for the newest version of a name; fresh
// skips its cache.
func (c *Client) ResolveName(ctx context.Context, a NameArgs, fresh bool) (NameInfo, error) {
	v := a.values()
	if fresh {
		v.Set("fresh", "true")
	}
	var out NameInfo
	return out, c.getJSON(ctx, "/name/resolve", v, &out)
}

// NameLog asks the node for a name's versions, newest first.
func (c *Client) NameLog(ctx context.Context, a NameArgs) (NameLog, error) {
	var out NameLog
	return out, c.getJSON(ctx, "/name/log", a.values(), &out)
}
