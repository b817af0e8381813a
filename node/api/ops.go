package api

import (
	"context"
	"net/http"
)

// StopRequested is closed once a client asked the node to stop (POST
// /node/stop, 'ddc node stop'): whoever runs the node then stops it as
// it does on SIGINT.
func (s *Server) StopRequested() <-chan struct{} { return s.stopReq }

func (s *Server) nodeStop(w http.ResponseWriter, _ *http.Request) {
	s.log.Info("stop asked through the API")
	s.stopOnce.Do(func() { close(s.stopReq) })
	s.reply(w, struct {
		Stopping bool `json:"stopping"`
	}{true})
}

// Stop asks the node to stop cleanly; it returns once the node took the
// request, before it has stopped.
func (c *Client) Stop(ctx context.Context) error {
	return c.callJSON(ctx, http.MethodPost, "/node/stop", nil, &struct{}{})
}
