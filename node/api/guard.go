package api

import (
	"context"
	"crypto/subtle"
	"fmt"
	"mime"
	"net"
	"net/http"
	"strings"
)

// guard refuses requests that a web page, rather than a program of the
// node's user, may have made. The API listens on loopback, so any page the
// user opens can send it requests; these rules keep such pages from
// storing, pinning or reading anything, as IPFS nodes do for their RPC API:
//
//   - The Host header must be localhost or a loopback address, with the
//     API's port if it names one: a DNS-rebound name (evil.example
//     resolving to 127.0.0.1) is refused, so a page cannot read replies.
//   - An Origin header must be the API's own (http://localhost:PORT,
//     http://127.0.0.1:PORT, http://[::1]:PORT); browsers send it with
//     every POST and with cross-origin reads.
//   - Sec-Fetch-Site, which browsers send with every request (an <img> tag
//     too, which carries no Origin), must be same-origin or none.
//   - A POST must not carry a body type a page can send without asking
//     the server first (text/plain and the two form types), for browsers
//     too old to send the headers above.
//
// Programs (the CLI, curl, scripts) send none of these headers and pass.
// guard also counts each request in, so that Close can wait for it.
func (s *Server) guard(next http.Handler) http.Handler {
	_, port, _ := net.SplitHostPort(s.Addr())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.enter() {
			s.fail(w, fmt.Errorf("node is stopping: %w", context.Canceled))
			return
		}
		defer s.handlers.Done()
		if s.secret != "" && !authorized(r, s.secret) {
			s.log.Info("api request without the API secret", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Basic realm="ddc API", charset="UTF-8"`)
			http.Error(w, "this API needs the repo's API secret (api.secret): Authorization: Bearer SECRET, or basic auth with it as the password", http.StatusUnauthorized)
			return
		}
		// With a secret, any Host: a rebound name cannot forge the secret.
		if err := checkBrowser(r, port, s.secret != ""); err != nil {
			s.log.Info("api request refused", "method", r.Method, "path", r.URL.Path, "err", err)
			s.fail(w, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkBrowser applies guard's rules to r for an API on port.
func checkBrowser(r *http.Request, port string, anyHost bool) error {
	if !anyHost && !loopbackHost(r.Host, port) {
		return forbiddenf("host %.100q is not this API's: use localhost:%s or a loopback address", r.Host, port)
	}
	if o := r.Header.Get("Origin"); o != "" {
		rest, ok := strings.CutPrefix(o, "http://")
		if !ok || !loopbackHost(rest, port) || !strings.Contains(rest, ":") {
			return forbiddenf("origin %.100q may not use the node's API", o)
		}
	}
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		return forbiddenf("a %.40q request from a web page may not use the node's API", site)
	}
	if r.Method == http.MethodPost {
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil {
			switch mt {
			case "text/plain", "application/x-www-form-urlencoded", "multipart/form-data":
				return forbiddenf("content type %s may not be posted to the node's API: send application/octet-stream", mt)
			}
		}
	}
	return nil
}

// authorized reports whether r carries secret, as a Bearer token or as
// the password of basic auth (any user name, as Kubo's API takes it).
func authorized(r *http.Request, secret string) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		_, got, ok = r.BasicAuth()
	}
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(secret)) == 1
}

// loopbackHost reports whether hostport (a Host header, or an origin
// without its scheme) names localhost or a loopback address, on port if
// it names a port at all.
func loopbackHost(hostport, port string) bool {
	host := hostport
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		if p != port {
			return false
		}
		host = h
	} else if strings.HasPrefix(hostport, "[") { // [::1] without a port
		host = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func forbiddenf(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrForbidden, fmt.Sprintf(format, a...))
}
