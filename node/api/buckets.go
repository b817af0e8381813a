package api

import (
	"context"
	"net/http"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/node"
)

// BucketInfo is a bucket record as the API and the CLI show it.
type BucketInfo struct {
	ID      string `json:"id"`
	Owner   string `json:"owner"`
	Cluster string `json:"cluster"`
	Access  string `json:"access"` // "public" or "private"
	Label   string `json:"label,omitempty"`
	// Replicas is the bucket's replication factor.
	Replicas int    `json:"replicas"`
	Seq      uint64 `json:"seq"`
}

// BucketInfoOf describes r.
func BucketInfoOf(r bucket.Record) BucketInfo {
	access := "public"
	if r.Private {
		access = "private"
	}
	return BucketInfo{ID: r.Bucket.String(), Owner: r.Owner.String(), Cluster: r.Cluster, Access: access, Label: r.Label, Replicas: r.Replicas, Seq: r.Seq}
}

// bucketInfo answers GET /bucket/{id}: the newest record, kept or found in
// the cluster's DHT within providersTimeout.
func (s *Server) bucketInfo(w http.ResponseWriter, r *http.Request) {
	s.onBucket(w, r, s.n.FindBucket)
}

// publishBucket answers POST /bucket/{id}/publish: the repo's record of
// the bucket goes to the cluster's DHT now.
func (s *Server) publishBucket(w http.ResponseWriter, r *http.Request) {
	s.onBucket(w, r, s.n.PublishBucket)
}

// onBucket calls fn on the request's bucket within providersTimeout and
// replies with the record it returns.
func (s *Server) onBucket(w http.ResponseWriter, r *http.Request, fn func(context.Context, bucket.ID) (bucket.Record, error)) {
	id, err := bucket.ParseID(r.PathValue("id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), providersTimeout)
	defer cancel()
	rec, err := fn(ctx, id)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.reply(w, BucketInfoOf(rec))
}

// Bucket returns the newest record of id the node knows or finds.
func (c *Client) Bucket(ctx context.Context, id bucket.ID) (BucketInfo, error) {
	var b BucketInfo
	return b, c.getJSON(ctx, "/bucket/"+id.String(), nil, &b)
}

// PublishBucket has the node publish the repo's record of id.
func (c *Client) PublishBucket(ctx context.Context, id bucket.ID) (BucketInfo, error) {
	var b BucketInfo
	return b, c.callJSON(ctx, http.MethodPost, "/bucket/"+id.String()+"/publish", nil, &b)
}

// requestIn is node.ParseIn of an HTTP request: the bucket query
// parameter and the token header.
func requestIn(r *http.Request) (*node.In, error) {
	return node.ParseIn(r.URL.Query().Get("bucket"), r.Header.Get(TokenHeader))
}
