package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"

	"github.com/nbd-wtf/go-nostr/nip86"

	"pow.do/relay/access"
)

// maxManageBody bounds a NIP-86 request body.
const maxManageBody = 64 << 10

// ManagementMethods are the NIP-86 methods served (PROTOCOL.md section 9).
var ManagementMethods = []string{
	"supportedmethods",
	"allowpubkey", "unallowpubkey", "banpubkey", "unbanpubkey", "listallowedpubkeys", "listbannedpubkeys",
	"allowinvite", "claiminvite", "setinvitequota", "listinvites",
}

// rpcError is a NIP-86 error with the HTTP status it is answered with.
type rpcError struct {
	status int
	msg    string
}

func (e *rpcError) Error() string { return e.msg }

func rpcErr(status int, format string, a ...any) *rpcError {
	return &rpcError{status, fmt.Sprintf(format, a...)}
}

// handleManagement serves NIP-86 itself (not khatru's handler, which reads unbounded
// bodies, accepts any event kind as auth and answers 200 to everything).
func (s *Server) handleManagement(w http.ResponseWriter, r *http.Request) {
	method := "unknown"
	status := http.StatusOK
	respond := func(resp nip86.Response) {
		w.Header().Set("Content-Type", "application/nostr+json+rpc")
		if resp.Error != "" {
			w.Header().Set("X-Reason", resp.Error)
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(resp)
		s.metrics.manage.WithLabelValues(method, fmt.Sprint(status)).Inc()
	}
	if r.Method != http.MethodPost {
		status = http.StatusMethodNotAllowed
		respond(nip86.Response{Error: "management calls are POST requests"})
		return
	}
	if !s.mgIP.Allow(s.clientIP(r)) {
		status = http.StatusTooManyRequests
		respond(nip86.Response{Error: fmt.Sprintf("too often: at most %d management calls per minute from one address", s.cfg.ManagePerMinuteIP)})
		return
	}
	if r.ContentLength > maxManageBody {
		status = http.StatusRequestEntityTooLarge
		respond(nip86.Response{Error: "too big: request body over 64 KiB"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxManageBody))
	if err != nil {
		status = http.StatusRequestEntityTooLarge
		respond(nip86.Response{Error: "too big: request body over 64 KiB"})
		return
	}
	caller, err := s.verifyNIP98(r, body)
	if err != nil {
		status = http.StatusUnauthorized
		respond(nip86.Response{Error: "unauthorized: " + err.Error()})
		return
	}
	var req nip86.Request
	if err := json.Unmarshal(body, &req); err != nil {
		status = http.StatusBadRequest
		respond(nip86.Response{Error: "invalid: body is not a NIP-86 request"})
		return
	}
	if contains(ManagementMethods, req.Method) {
		method = req.Method
	}
	result, rerr := s.call(caller, req)
	if rerr != nil {
		status = rerr.status
		s.log.Info("management call refused", "method", req.Method, "caller", caller, "status", status, "err", rerr.msg)
		respond(nip86.Response{Error: rerr.msg})
		return
	}
	respond(nip86.Response{Result: result})
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func pubkeyParam(req nip86.Request, i int) (string, *rpcError) {
	if len(req.Params) <= i {
		return "", rpcErr(http.StatusBadRequest, "invalid: %s needs a pubkey as parameter %d", req.Method, i+1)
	}
	v, ok := req.Params[i].(string)
	if !ok {
		return "", rpcErr(http.StatusBadRequest, "invalid: %s parameter %d must be a pubkey string", req.Method, i+1)
	}
	pk, err := ParsePubkey(v)
	if err != nil {
		return "", rpcErr(http.StatusBadRequest, "invalid: %v", err)
	}
	return pk, nil
}

func intParam(req nip86.Request, i int) (int64, *rpcError) {
	if len(req.Params) <= i {
		return 0, rpcErr(http.StatusBadRequest, "invalid: %s needs a number as parameter %d", req.Method, i+1)
	}
	f, ok := req.Params[i].(float64)
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, rpcErr(http.StatusBadRequest, "invalid: %s parameter %d must be an integer", req.Method, i+1)
	}
	return int64(f), nil
}

func reasonParam(req nip86.Request, i int) string {
	if len(req.Params) > i {
		if v, ok := req.Params[i].(string); ok && len(v) <= 500 {
			return v
		}
	}
	return ""
}

// accessErr maps whitelist errors to HTTP statuses.
func accessErr(err error) *rpcError {
	switch {
	case errors.Is(err, access.ErrForbidden), errors.Is(err, access.ErrBanned):
		return rpcErr(http.StatusForbidden, "forbidden: %v", err)
	case errors.Is(err, access.ErrInvalid):
		return rpcErr(http.StatusBadRequest, "invalid: %v", err)
	case errors.Is(err, access.ErrNotFound):
		return rpcErr(http.StatusNotFound, "not found: %v", err)
	case errors.Is(err, access.ErrInviteUsed):
		return rpcErr(http.StatusConflict, "conflict: %v", err)
	case errors.Is(err, access.ErrInviteExpired):
		return rpcErr(http.StatusGone, "expired: %v", err)
	}
	return rpcErr(http.StatusInternalServerError, "error: %v", err)
}

func (s *Server) call(caller string, req nip86.Request) (any, *rpcError) {
	admin := s.access.IsAdmin(caller)
	adminOnly := func() *rpcError {
		if !admin {
			return rpcErr(http.StatusForbidden, "forbidden: %s is for admins only", req.Method)
		}
		return nil
	}
	switch req.Method {
	case "supportedmethods":
		return ManagementMethods, nil

	case "allowpubkey":
		if e := adminOnly(); e != nil {
			return nil, e
		}
		pk, e := pubkeyParam(req, 0)
		if e != nil {
			return nil, e
		}
		if err := s.access.Allow(caller, pk, reasonParam(req, 1)); err != nil {
			return nil, accessErr(err)
		}
		s.log.Info("pubkey allowed", "pubkey", pk, "by", caller)
		return true, nil

	case "unallowpubkey":
		pk, e := pubkeyParam(req, 0)
		if e != nil {
			return nil, e
		}
		removed, err := s.access.Unallow(caller, pk)
		if err != nil {
			return nil, accessErr(err)
		}
		s.log.Info("pubkey removed", "pubkey", pk, "by", caller, "removed_with_invitees", len(removed))
		return true, nil

	case "banpubkey":
		if e := adminOnly(); e != nil {
			return nil, e
		}
		pk, e := pubkeyParam(req, 0)
		if e != nil {
			return nil, e
		}
		removed, err := s.access.Ban(pk, reasonParam(req, 1))
		if err != nil {
			return nil, accessErr(err)
		}
		s.log.Info("pubkey banned", "pubkey", pk, "by", caller, "removed_with_invitees", len(removed))
		return true, nil

	case "unbanpubkey":
		if e := adminOnly(); e != nil {
			return nil, e
		}
		pk, e := pubkeyParam(req, 0)
		if e != nil {
			return nil, e
		}
		if err := s.access.Unban(pk); err != nil {
			return nil, accessErr(err)
		}
		s.log.Info("pubkey unbanned", "pubkey", pk, "by", caller)
		return true, nil

	case "listallowedpubkeys", "listbannedpubkeys":
		if e := adminOnly(); e != nil {
			return nil, e
		}
		list := s.access.Allowed()
		if req.Method == "listbannedpubkeys" {
			list = s.access.Banned()
		}
		out := make([]nip86.PubKeyReason, 0, len(list))
		for _, e := range list {
			out = append(out, nip86.PubKeyReason{PubKey: e.PubKey, Reason: e.Reason})
		}
		return out, nil

	case "allowinvite":
		key, e := pubkeyParam(req, 0)
		if e != nil {
			return nil, e
		}
		exp, e := intParam(req, 1)
		if e != nil {
			return nil, e
		}
		if err := s.access.AllowInvite(caller, key, time.Unix(exp, 0)); err != nil {
			return nil, accessErr(err)
		}
		s.log.Info("invite allowed", "invite", key, "by", caller, "expires", exp)
		return true, nil

	case "claiminvite":
		pk, e := pubkeyParam(req, 0)
		if e != nil {
			return nil, e
		}
		// The NIP-98 signer is the invite key: holding its private key is the proof.
		if err := s.access.ClaimInvite(caller, pk); err != nil {
			return nil, accessErr(err)
		}
		s.log.Info("invite claimed", "invite", caller, "pubkey", pk)
		return true, nil

	case "setinvitequota":
		if e := adminOnly(); e != nil {
			return nil, e
		}
		pk, e := pubkeyParam(req, 0)
		if e != nil {
			return nil, e
		}
		n, e := intParam(req, 1)
		if e != nil {
			return nil, e
		}
		if n < 0 || n > 1_000_000 {
			return nil, rpcErr(http.StatusBadRequest, "invalid: quota must be 0..1000000")
		}
		if err := s.access.SetQuota(pk, int(n)); err != nil {
			return nil, accessErr(err)
		}
		s.log.Info("invite quota set", "pubkey", pk, "quota", n, "by", caller)
		return true, nil

	case "listinvites":
		if e := adminOnly(); e != nil {
			return nil, e
		}
		return s.access.Invites(), nil
	}
	return nil, rpcErr(http.StatusBadRequest, "unsupported: method %q is not supported", req.Method)
}
