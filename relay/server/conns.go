package server

import (
	"bufio"
	"net"
	"net/http"
	"sync"
)

// connTracker counts websocket connections per IP and remembers their sockets so shutdown
// can close them (http.Server.Shutdown does not track hijacked connections).
type connTracker struct {
	max int

	mu    sync.Mutex
	perIP map[string]int
	byReq map[*http.Request]*trackedConn
}

type trackedConn struct {
	ip   string
	conn net.Conn
}

func newConnTracker(max int) *connTracker {
	return &connTracker{max: max, perIP: map[string]int{}, byReq: map[*http.Request]*trackedConn{}}
}

// register reserves a slot for ip; false when ip is at its limit.
func (c *connTracker) register(r *http.Request, ip string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max > 0 && c.perIP[ip] >= c.max {
		return false
	}
	c.perIP[ip]++
	c.byReq[r] = &trackedConn{ip: ip}
	return true
}

// attach records the hijacked socket, unless the connection already went away.
func (c *connTracker) attach(r *http.Request, conn net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.byReq[r]; ok {
		t.conn = conn
	}
}

func (c *connTracker) unregister(r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.byReq[r]
	if !ok {
		return
	}
	delete(c.byReq, r)
	if c.perIP[t.ip]--; c.perIP[t.ip] <= 0 {
		delete(c.perIP, t.ip)
	}
}

func (c *connTracker) closeAll() {
	c.mu.Lock()
	conns := make([]net.Conn, 0, len(c.byReq))
	for _, t := range c.byReq {
		if t.conn != nil {
			conns = append(conns, t.conn)
		}
	}
	c.mu.Unlock()
	for _, conn := range conns {
		conn.Close()
	}
}

func (c *connTracker) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byReq)
}

// hijackWatcher lets us see the socket the websocket upgrader takes over.
type hijackWatcher struct {
	http.ResponseWriter
	conn net.Conn
}

func (h *hijackWatcher) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err == nil {
		h.conn = conn
	}
	return conn, brw, err
}

func (h *hijackWatcher) Unwrap() http.ResponseWriter { return h.ResponseWriter }

func (s *Server) serveWebsocket(w http.ResponseWriter, r *http.Request) {
	ip := s.clientIP(r)
	if !s.conns.register(r, ip) {
		s.metrics.connsRefused.Inc()
		fail(w, http.StatusTooManyRequests, "too many connections from your address")
		return
	}
	hw := &hijackWatcher{ResponseWriter: w}
	s.relay.HandleWebsocket(hw, r)
	if hw.conn == nil {
		s.conns.unregister(r) // the upgrade failed; khatru will not call OnDisconnect
		return
	}
	s.conns.attach(r, hw.conn)
}
