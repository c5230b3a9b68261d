package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
)

// HTTPRequest is Data.<req> of an httpTrigger invocation on the JSON-envelope path.
type HTTPRequest struct {
	URL        string              `json:"Url"`
	Method     string              `json:"Method"`
	Query      map[string]string   `json:"Query"`
	Headers    map[string][]string `json:"Headers"`
	Params     map[string]string   `json:"Params"`
	Identities []Identity          `json:"Identities"`
	// Body is absent when the caller sent no Content-Length (a chunked upload) or an empty body; it
	// is base64 for application/octet-stream and multipart bodies, the text otherwise.
	Body *string `json:"Body"`
}

// Identity is a serialized .NET ClaimsIdentity, as the host puts it in Data.req.Identities.
type Identity struct {
	AuthenticationType string  `json:"AuthenticationType"`
	IsAuthenticated    bool    `json:"IsAuthenticated"`
	Claims             []Claim `json:"Claims"`
}

// Claim is one claim of an Identity.
type Claim struct {
	Type  string `json:"Type"`
	Value string `json:"Value"`
}

// ClaimKeyID is the claim that names the function key a caller used.
const ClaimKeyID = "http://schemas.microsoft.com/2017/07/functions/claims/keyid"

type identitiesKey struct{}

// WithIdentities returns ctx carrying the caller's identities.
func WithIdentities(ctx context.Context, ids []Identity) context.Context {
	return context.WithValue(ctx, identitiesKey{}, ids)
}

// Identities returns the identities the host authenticated for this request. They exist only on the
// envelope path: a forwarded request carries none, which is why host.json keeps forwarding off.
func Identities(ctx context.Context) []Identity {
	ids, _ := ctx.Value(identitiesKey{}).([]Identity)
	return ids
}

// DecodeHTTPRequest decodes Data.<binding> of an httpTrigger.
func DecodeHTTPRequest(req *Request, binding string) (*HTTPRequest, error) {
	var hr HTTPRequest
	if err := DecodeObject(req, binding, &hr); err != nil {
		return nil, err
	}
	return &hr, nil
}

// NewHTTPRequest rebuilds the caller's request from the envelope, with route parameters set as path
// values (r.PathValue) and identities in the context, so one ordinary http.Handler serves both the
// envelope path and the forwarded path.
func (hr *HTTPRequest) NewHTTPRequest(ctx context.Context) (*http.Request, error) {
	u, err := url.Parse(hr.URL)
	if err != nil || hr.URL == "" {
		return nil, fmt.Errorf("%w: Data.req.Url %q", ErrMalformed, hr.URL)
	}
	if u.RawQuery == "" && len(hr.Query) > 0 {
		// The Url carries the raw query string; fall back on the parsed Query object if it does not.
		q := url.Values{}
		for k, v := range hr.Query {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
	}
	method := hr.Method
	if method == "" {
		method = http.MethodGet
	}
	var body []byte
	if hr.Body != nil {
		body = []byte(*hr.Body)
		if isBinaryContent(firstHeader(hr.Headers, "Content-Type")) {
			if b, err := decodeBase64(*hr.Body); err == nil {
				body = b
			}
		}
	}
	r, err := http.NewRequestWithContext(WithIdentities(ctx, hr.Identities), method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	for k, vs := range hr.Headers {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	r.ContentLength = int64(len(body))
	if hr.Body == nil {
		r.Body = http.NoBody
	}
	r.Host = u.Host
	r.RequestURI = u.RequestURI()
	for k, v := range hr.Params {
		r.SetPathValue(k, v)
	}
	return r, nil
}

func firstHeader(h map[string][]string, name string) string {
	for k, vs := range h {
		if strings.EqualFold(k, name) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

func isBinaryContent(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/octet-stream" || strings.HasPrefix(mt, "multipart/")
}

// HTTPResponse is the value of a named http output binding (Outputs.res). statusCode is a string
// (the host's HttpOutputBindingResponse.StatusCode is a string); headers are strings; body is text.
type HTTPResponse struct {
	StatusCode string            `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
}

// HTTPEnvelope adapts an ordinary http.Handler to the envelope path: it decodes Data.<reqBinding>,
// serves the rebuilt request with h, and answers the host with Outputs.<resBinding>. The host always
// gets 200 (a non-2xx reply would fail the invocation and turn the caller's 4xx into a 500).
//
// With WithCommit, the writes the request made are committed before the answer; if that fails the
// caller gets 503 with Retry-After instead of the handler's answer.
func HTTPEnvelope(function, reqBinding, resBinding string, h http.Handler, opts ...Option) http.Handler {
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.commit != nil {
		h = Committing(o.commit, h)
	}
	return Handler(function, func(ctx context.Context, inv *Invocation) (*Response, error) {
		hr, err := DecodeHTTPRequest(inv.Request, reqBinding)
		if err != nil {
			return nil, err
		}
		r, err := hr.NewHTTPRequest(ctx)
		if err != nil {
			return nil, err
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		res := rec.Result()
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		headers := make(map[string]string, len(res.Header))
		for k, vs := range res.Header {
			headers[k] = strings.Join(vs, ", ")
		}
		if _, ok := headers["Content-Type"]; !ok && len(b) > 0 {
			headers["Content-Type"] = http.DetectContentType(b)
		}
		inv.Log.Info("http response", "method", r.Method, "path", r.URL.Path, "status", res.StatusCode)
		return &Response{Outputs: map[string]any{resBinding: HTTPResponse{
			StatusCode: strconv.Itoa(res.StatusCode), Headers: headers, Body: string(b),
		}}}, nil
	}, opts...)
}

// MarshalHTTPRequest is the inverse of DecodeHTTPRequest for host simulators and tests: it renders an
// http.Request as the host's Data.req object.
func MarshalHTTPRequest(r *http.Request, params map[string]string, ids []Identity) (json.RawMessage, error) {
	hr := HTTPRequest{
		URL: r.URL.String(), Method: r.Method, Query: map[string]string{},
		Headers: map[string][]string{}, Params: params, Identities: ids,
	}
	if hr.Params == nil {
		hr.Params = map[string]string{}
	}
	if hr.Identities == nil {
		hr.Identities = []Identity{}
	}
	for k, vs := range r.URL.Query() {
		hr.Query[k] = strings.Join(vs, ",")
	}
	for k, vs := range r.Header {
		hr.Headers[k] = vs
	}
	if r.Host != "" {
		hr.Headers["Host"] = []string{r.Host}
	}
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		if len(b) > 0 {
			hr.Headers["Content-Length"] = []string{strconv.Itoa(len(b))}
			s := string(b)
			if isBinaryContent(r.Header.Get("Content-Type")) {
				s = encodeBase64(b)
			}
			hr.Body = &s
		}
	}
	return json.Marshal(hr)
}

// Committing wraps h so that the writes a request made are durable before its answer leaves: h's
// response is held, commit runs, and only then is the response written; if commit fails the caller
// gets 503 (application/problem+json, Retry-After) instead, and nothing it was told happened is lost.
func Committing(commit func(ctx context.Context) error, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if err := commit(context.WithoutCancel(r.Context())); err != nil {
			w.Header().Set("Content-Type", "application/problem+json")
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(http.StatusServiceUnavailable)
			b, _ := json.Marshal(map[string]any{"type": "about:blank", "title": "Service Unavailable", "status": http.StatusServiceUnavailable,
				"detail": "the request could not be saved durably; retry later"})
			_, _ = w.Write(b)
			return
		}
		for k, vs := range rec.Header() {
			w.Header()[k] = vs
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}
