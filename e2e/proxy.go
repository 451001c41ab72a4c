package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Proxy is a TCP forwarder on a fixed 127.0.0.1 port that can be switched off (the
// port refuses connections and every open connection is cut) and on again. The
// trackers and the DVM reach Blossom through it, so the test can make Blossom
// unreachable while the relay's websocket, on the same server, stays up.
type Proxy struct {
	Addr   string // listen address, host:port
	Target string // where connections go

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
	// Accepted counts connections forwarded since the proxy was created.
	accepted int
}

// NewProxy makes a proxy from addr to target; call Enable to open it.
func NewProxy(addr, target string) *Proxy {
	return &Proxy{Addr: addr, Target: target, conns: map[net.Conn]struct{}{}}
}

// Enable starts listening (again). The port is retried for a few seconds because the
// kernel may still hold it from the last listener.
func (p *Proxy) Enable() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return nil
	}
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; {
		if ln, err = net.Listen("tcp", p.Addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // retry of a busy port, not synchronisation
	}
	if err != nil {
		return fmt.Errorf("proxy listen %s: %w", p.Addr, err)
	}
	p.ln = ln
	p.wg.Add(1)
	go p.accept(ln)
	return nil
}

// Disable closes the listener and cuts every forwarded connection.
func (p *Proxy) Disable() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
}

// Close disables the proxy and waits for its goroutines.
func (p *Proxy) Close() {
	p.Disable()
	p.wg.Wait()
}

// Accepted is how many connections were forwarded so far.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		in, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if !p.track(in) {
			in.Close()
			continue
		}
		p.wg.Add(1)
		go p.forward(in)
	}
}

func (p *Proxy) forward(in net.Conn) {
	defer p.wg.Done()
	defer p.untrack(in)
	out, err := net.DialTimeout("tcp", p.Target, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(out) {
		out.Close()
		return
	}
	defer p.untrack(out)
	p.mu.Lock()
	p.accepted++
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	<-done
}
