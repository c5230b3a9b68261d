package handlers

import (
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/contoso/eventpipeline/pkg/feedback"
	"github.com/contoso/eventpipeline/pkg/protocol"
)

// MaxFeedbackBody is the largest request body PartnerFeedback reads (256 KB); larger is 413.
const MaxFeedbackBody = 256 << 10

// Media types PartnerFeedback accepts.
const (
	mediaJSON        = "application/json"
	mediaCloudEvent  = "application/cloudevents+json"
	mediaCloudEvents = "application/cloudevents-batch+json"
)

const problemBase = "https://contoso.example/problems/"

type acceptedItem struct {
	ID string `json:"id"`
}

type acceptedResponse struct {
	Accepted []acceptedItem `json:"accepted"`
}

// partnerFeedback serves POST /api/feedback (function PartnerFeedback). In order, so that a refused
// request costs as little as possible: who is calling (401/403), the partner's rate (429), the body
// size (413), its media type (415), its JSON (400) and fields (422, every error listed); then the
// feedback is published to the hub "feedback" and the answer recorded for idempotent replays (202;
// 409 for a key in use or reused; 503 with Retry-After when the hub cannot be reached, with nothing
// recorded). Comments and titles are never logged nor echoed in an error.
func (a *app) partnerFeedback(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return &Problem{Type: problemBase + "method-not-allowed", Title: "Method not allowed",
			Status: http.StatusMethodNotAllowed, Detail: "use POST"}
	}
	if a.Feedback == nil {
		return &Problem{Type: problemBase + "unavailable", Title: "Service unavailable",
			Status: http.StatusServiceUnavailable, Detail: "the feedback API is not configured on this instance", RetryAfter: 60}
	}
	partner, err := a.Partners.Identify(callerCredentials(r))
	switch {
	case errors.Is(err, feedback.ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", `FunctionKey realm="PartnerFeedback"`)
		return &Problem{Type: problemBase + "unauthenticated", Title: "Unauthenticated", Status: http.StatusUnauthorized,
			Detail: "call with your partner function key (header x-functions-key) or an Entra ID token"}
	case err != nil:
		return &Problem{Type: problemBase + "not-a-partner", Title: "Forbidden", Status: http.StatusForbidden, Detail: err.Error()}
	}
	if a.FeedbackLimit != nil {
		if ok, wait := a.FeedbackLimit.Allow(partner, a.Now()); !ok {
			secs := int(math.Ceil(wait.Seconds()))
			return &Problem{Type: problemBase + "rate-limited", Title: "Too many requests", Status: http.StatusTooManyRequests,
				Detail: fmt.Sprintf("partner %s is over its request rate; retry after %d s", partner, secs), RetryAfter: secs}
		}
	}
	if r.ContentLength > MaxFeedbackBody {
		return tooLarge(r.ContentLength)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxFeedbackBody+1))
	if err != nil {
		return badRequest("the body could not be read")
	}
	if len(body) > MaxFeedbackBody {
		return tooLarge(-1)
	}
	if len(body) == 0 {
		return &Problem{Type: problemBase + "malformed-json", Title: "Malformed JSON", Status: http.StatusBadRequest,
			Detail: "the body is empty (the Functions host drops a chunked body: send it with a Content-Length)"}
	}
	subs, err := decodeFeedbackBody(r, body)
	if err != nil {
		return err
	}
	res, err := a.Feedback.Submit(r.Context(), partner, subs)
	if err != nil {
		return feedbackProblem(err)
	}
	out := acceptedResponse{Accepted: make([]acceptedItem, len(res.IDs))}
	for i, id := range res.IDs {
		out.Accepted[i] = acceptedItem{ID: id}
	}
	if res.Replayed == len(res.IDs) {
		// The same answer as the first time; the header only tells a curious client it was a replay.
		w.Header().Set("Idempotent-Replayed", "true")
	}
	a.Log.Info("feedback accepted", "partner", partner, "events", len(res.IDs), "replayed", res.Replayed)
	return writeJSON(w, http.StatusAccepted, out)
}

func tooLarge(n int64) *Problem {
	detail := fmt.Sprintf("the body is larger than %d bytes", MaxFeedbackBody)
	if n > 0 {
		detail = fmt.Sprintf("the body is %d bytes; at most %d are accepted (send a batch of fewer events)", n, MaxFeedbackBody)
	}
	return &Problem{Type: problemBase + "too-large", Title: "Payload too large", Status: http.StatusRequestEntityTooLarge, Detail: detail}
}

// decodeFeedbackBody picks the decoder by media type: structured CloudEvent, batch, or JSON; JSON
// with a ce-specversion header is a binary-mode CloudEvent.
func decodeFeedbackBody(r *http.Request, body []byte) ([]feedback.Submission, error) {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		return nil, unsupported(ct)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return nil, unsupported(ct)
	}
	var subs []feedback.Submission
	switch mt {
	case mediaCloudEvent:
		var s feedback.Submission
		s, err = feedback.DecodeStructured(body)
		subs = []feedback.Submission{s}
	case mediaCloudEvents:
		subs, err = feedback.DecodeBatch(body)
	case mediaJSON:
		var s feedback.Submission
		if attrs := ceHeaders(r.Header); attrs != nil {
			s, err = feedback.DecodeBinary(attrs, body)
		} else {
			var key *string
			if vs := r.Header.Values("Idempotency-Key"); len(vs) > 0 {
				key = &vs[0]
			}
			s, err = feedback.DecodeJSON(body, key)
		}
		subs = []feedback.Submission{s}
	default:
		return nil, unsupported(ct)
	}
	if err != nil {
		return nil, feedbackProblem(err)
	}
	return subs, nil
}

func unsupported(ct string) *Problem {
	got := "no Content-Type"
	if ct != "" {
		got = "Content-Type " + strconv.Quote(ct)
	}
	return &Problem{Type: problemBase + "unsupported-media-type", Title: "Unsupported media type",
		Status: http.StatusUnsupportedMediaType,
		Detail: got + ": send " + mediaJSON + ", " + mediaCloudEvent + " or " + mediaCloudEvents + " (UTF-8)"}
}

// ceHeaders returns the CloudEvents binary-mode attributes (ce-* headers, names lower-cased without
// the prefix, values percent-decoded as the HTTP binding says), or nil when there is no
// ce-specversion header.
func ceHeaders(h http.Header) map[string]string {
	if h.Get("ce-specversion") == "" {
		return nil
	}
	attrs := map[string]string{}
	for k, vs := range h {
		name, ok := strings.CutPrefix(strings.ToLower(k), "ce-")
		if !ok || len(vs) == 0 {
			continue
		}
		v := vs[0]
		if u, err := url.PathUnescape(v); err == nil {
			v = u
		}
		attrs[name] = v
	}
	return attrs
}

// callerCredentials collects what the platform says about the caller: the function key name from
// the host's identities, and the App Service Authentication principal (the X-MS-CLIENT-PRINCIPAL
// headers, which App Service sets and strips from incoming requests when authentication is on).
// Only identities the host marks authenticated count: an unauthenticated identity carrying a key
// name claim proves nothing.
func callerCredentials(r *http.Request) feedback.Credentials {
	var c feedback.Credentials
	var claims []feedback.Claim
	for _, id := range protocol.Identities(r.Context()) {
		if !id.IsAuthenticated {
			continue
		}
		for _, cl := range id.Claims {
			if cl.Type == protocol.ClaimKeyID && c.KeyName == "" {
				c.KeyName = cl.Value
			}
		}
		if id.AuthenticationType != "WebJobsAuthLevel" {
			// An App Service Authentication identity, if the host passes one on (UNCONFIRMED).
			for _, cl := range id.Claims {
				claims = append(claims, feedback.Claim{Type: cl.Type, Value: cl.Value})
			}
		}
	}
	if h := r.Header.Get("X-MS-CLIENT-PRINCIPAL"); h != "" {
		p, err := feedback.DecodeClientPrincipal(h)
		if err != nil {
			p = &feedback.Principal{} // present but unreadable: a principal that maps to nobody
		}
		claims = append(claims, p.Claims...)
	}
	if id := r.Header.Get("X-MS-CLIENT-PRINCIPAL-ID"); claims != nil || id != "" {
		c.Principal = &feedback.Principal{ID: id, Claims: claims}
	}
	return c
}

// feedbackProblem maps the feedback domain's errors to problem responses. Errors it does not know
// go to api's default: 503 with Retry-After, logged as an error.
func feedbackProblem(err error) error {
	var inv *feedback.InvalidError
	var busy *feedback.InProgressError
	switch {
	case errors.As(err, &inv):
		errs := make([]FieldError, len(inv.Errors))
		for i, fe := range inv.Errors {
			errs[i] = FieldError{Field: fe.Field, Message: fe.Message}
		}
		detail := "1 field is invalid"
		if len(errs) != 1 {
			detail = fmt.Sprintf("%d fields are invalid", len(errs))
		}
		return &Problem{Type: problemBase + "invalid-feedback", Title: "Invalid feedback", Status: http.StatusUnprocessableEntity,
			Detail: detail, Errors: errs}
	case errors.Is(err, feedback.ErrMalformed):
		return &Problem{Type: problemBase + "malformed-json", Title: "Malformed JSON", Status: http.StatusBadRequest,
			Detail: strings.TrimPrefix(err.Error(), feedback.ErrMalformed.Error()+": ")}
	case errors.Is(err, feedback.ErrForbidden):
		return &Problem{Type: problemBase + "partner-mismatch", Title: "Forbidden", Status: http.StatusForbidden,
			Detail: "the body names a partner other than the caller"}
	case errors.Is(err, feedback.ErrKeyReused):
		return &Problem{Type: problemBase + "idempotency-key-reused", Title: "Idempotency key reused", Status: http.StatusConflict,
			Detail: "this id (CloudEvent id or Idempotency-Key) was used for different feedback within the last 24 hours; use a new id"}
	case errors.As(err, &busy):
		return &Problem{Type: problemBase + "request-in-progress", Title: "Request in progress", Status: http.StatusConflict,
			Detail: "a request with the same id is being processed; retry later for its answer", RetryAfter: max(1, int(math.Ceil(busy.RetryAfter.Seconds())))}
	}
	// The hub not reachable (publish.ErrNotDelivered), or refusing the events (publish.ErrRejected:
	// unknown hub, access denied, our configuration), or the idempotency store down: nothing was
	// recorded, the partner may retry the same request.
	return err
}
