package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/contoso/eventpipeline/handlers"
	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/deadletter/deadlettertest"
	"github.com/contoso/eventpipeline/pkg/docstore"
	"github.com/contoso/eventpipeline/pkg/embedded"
	"github.com/contoso/eventpipeline/pkg/hostsim"
	"github.com/contoso/eventpipeline/pkg/protocol"
	"github.com/contoso/eventpipeline/pkg/recent"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// env is a handler wired to embedded stores, served over HTTP like the host sees it.
type env struct {
	t     *testing.T
	srv   *httptest.Server
	host  *hostsim.Client
	lists *embedded.Collection[recent.List]
	store *switchable
	dead  *deadletter.Docs
	deps  handlers.Deps
}

// switchable lets a test make the store fail like an unavailable Cosmos DB.
type switchable struct {
	recent.Store
	down bool
}

var errDown = errors.New("503 service unavailable")

func (s *switchable) Get(ctx context.Context, pk, id string) (recent.List, docstore.ETag, error) {
	if s.down {
		return recent.List{}, "", errDown
	}
	return s.Store.Get(ctx, pk, id)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	db, err := embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	lists, err := embedded.NewCollection[recent.List](db, "recentlyViewed")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, lists: lists, store: &switchable{Store: lists}, dead: deadlettertest.Local(t, handlers.Functions()...)}
	e.deps = handlers.Deps{
		Log:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		Recent:      &recent.Service{Store: e.store, TTL: time.Hour, Concurrency: 1, MaxAttempts: 3},
		DeadLetters: e.dead,
		Now:         func() time.Time { return t0 },
	}
	e.srv = httptest.NewServer(handlers.New(e.deps))
	t.Cleanup(e.srv.Close)
	e.host = &hostsim.Client{BaseURL: e.srv.URL}
	return e
}

func click(id, viewerField, viewer, product string, sec int) []byte {
	return fmt.Appendf(nil, `{"specversion":"1.0","id":%q,"source":"/web","type":"com.contoso.clickstream.product.viewed","time":%q,"datacontenttype":"application/json","data":{%q:%q,"productId":%q}}`,
		id, t0.Add(time.Duration(sec)*time.Second).Format(time.RFC3339Nano), viewerField, viewer, product)
}

var partition = protocol.PartitionContext{FullyQualifiedNamespace: "contoso.servicebus.windows.net", EventHubName: "clickstream", ConsumerGroup: "recently-viewed", PartitionID: "2"}

func batch(first int64, bodies ...[]byte) []hostsim.Event {
	evs := make([]hostsim.Event, len(bodies))
	for i, b := range bodies {
		evs[i] = hostsim.Event{Body: b, SequenceNumber: first + int64(i), Offset: 1000 * (first + int64(i)), EnqueuedTime: t0.Add(time.Minute)}
	}
	return evs
}

func (e *env) invoke(fn string, body []byte) *hostsim.Result {
	e.t.Helper()
	return invokeAsHost(e.t, e.host, fn, body)
}

type recentBody struct {
	UserID string `json:"userId"`
	Items  []struct {
		ProductID string `json:"productId"`
		ViewedAt  string `json:"viewedAt"`
	} `json:"items"`
}

// getRecent calls GetRecentlyViewed through the JSON envelope, as the host does with forwarding off.
func (e *env) getRecent(user, query string) (*protocol.HTTPResponse, recentBody) {
	e.t.Helper()
	r := httptest.NewRequest(http.MethodGet, "https://contoso.azurewebsites.net/api/users/"+user+"/recently-viewed"+query, nil)
	env, err := hostsim.HTTP("GetRecentlyViewed", "req", r, map[string]string{"userId": user}, hostsim.FunctionKey("default"))
	if err != nil {
		e.t.Fatal(err)
	}
	res := e.invoke("GetRecentlyViewed", env)
	if res.Status != 200 {
		e.t.Fatalf("GetRecentlyViewed host status %d: %s", res.Status, res.Raw)
	}
	out, err := res.HTTPOutput("res")
	if err != nil {
		e.t.Fatal(err)
	}
	var b recentBody
	if out.StatusCode == "200" {
		if err := json.Unmarshal([]byte(out.Body), &b); err != nil {
			e.t.Fatalf("body %q: %v", out.Body, err)
		}
	}
	return out, b
}

func products(b recentBody) []string {
	var ps []string
	for _, it := range b.Items {
		ps = append(ps, it.ProductID)
	}
	return ps
}

func TestRecentlyViewedEndToEnd(t *testing.T) {
	e := newEnv(t)
	bodies := [][]byte{
		click("e1", "userId", "u1", "p1", 1),
		click("e2", "userId", "u1", "p2", 2),
		click("e3", "sessionId", "anon-1", "p3", 3),
		[]byte("not json"),
		[]byte(`{"specversion":"1.0","id":"x","source":"/web","type":"com.contoso.clickstream.product.viewed","data":{"userId":"u1"}}`),
		[]byte(`{"specversion":"1.0","id":"o","source":"/web","type":"com.contoso.search.performed","data":{}}`),
		click("e1", "userId", "u1", "p1", 1), // duplicate delivery of e1
	}
	env := hostsim.EventHubBatch("RecentlyViewed", "events", partition, batch(100, bodies...), &protocol.RetryContext{RetryCount: 0, MaxRetryCount: 5})
	res := e.invoke("RecentlyViewed", env)
	if res.Status != 200 {
		t.Fatalf("status %d: %s", res.Status, res.Raw)
	}
	if len(res.Response.Logs) == 0 || !strings.Contains(strings.Join(res.Response.Logs, "\n"), "deadLettered=2") {
		t.Errorf("Logs = %q, want the batch summary", res.Response.Logs)
	}

	out, b := e.getRecent("u1", "")
	if out.StatusCode != "200" || out.Headers["Content-Type"] != "application/json; charset=utf-8" {
		t.Fatalf("GetRecentlyViewed = %+v", out)
	}
	if diff := cmp.Diff([]string{"p2", "p1"}, products(b)); diff != "" || b.UserID != "u1" {
		t.Fatalf("u1 list (-want +got):\n%s", diff)
	}
	if b.Items[0].ViewedAt != "2026-11-25T12:00:02Z" {
		t.Errorf("viewedAt = %q", b.Items[0].ViewedAt)
	}
	if _, b := e.getRecent("anon-1", "?limit=5"); fmt.Sprint(products(b)) != "[p3]" {
		t.Fatalf("anonymous session list = %v", products(b))
	}

	// The two malformed events are dead-lettered with reason and position; the other type is not.
	var recs []deadletter.Record
	e.dead.List(context.Background(), "RecentlyViewed", func(r deadletter.Record) error { recs = append(recs, r); return nil })
	if len(recs) != 2 {
		t.Fatalf("%d dead letters, want 2: %+v", len(recs), recs)
	}
	bySeq := map[int64]deadletter.Record{}
	for _, r := range recs {
		bySeq[r.SequenceNumber] = r
	}
	r := bySeq[103]
	if r.Kind != deadletter.KindPoison || r.Body != "not json" || r.Partition != "2" || r.Offset != "103000" ||
		!strings.Contains(r.Reason, "not JSON") || !r.EnqueuedTime.Equal(t0.Add(time.Minute)) || r.Function != "RecentlyViewed" {
		t.Errorf("record for seq 103 = %+v", r)
	}
	if !strings.Contains(bySeq[104].Reason, "productId") {
		t.Errorf("record for seq 104 reason = %q", bySeq[104].Reason)
	}

	// Replaying the same batch (the host redelivers after a lost checkpoint) changes nothing.
	before, etag, _ := e.lists.Get(context.Background(), "u1", "u1")
	e.invoke("RecentlyViewed", env)
	after, etag2, _ := e.lists.Get(context.Background(), "u1", "u1")
	if etag != etag2 || !cmp.Equal(before, after) {
		t.Fatalf("replay rewrote the list: %q -> %q", etag, etag2)
	}
}

func TestRecentlyViewedBinaryMode(t *testing.T) {
	e := newEnv(t)
	evs := batch(7, []byte(`{"userId":"u9","productId":"p-bin"}`))
	evs[0].Properties = map[string]any{"cloudEvents_specversion": "1.0", "cloudEvents_id": "b1", "cloudEvents_source": "/app",
		"cloudEvents_type": "com.contoso.clickstream.product.viewed", "cloudEvents_time": "2026-11-25T12:00:09Z"}
	e.invoke("RecentlyViewed", hostsim.EventHubBatch("RecentlyViewed", "events", partition, evs, nil))
	if _, b := e.getRecent("u9", ""); fmt.Sprint(products(b)) != "[p-bin]" {
		t.Fatalf("binary-mode click not applied: %v", products(b))
	}
}

func TestRecentlyViewedOrderIndependent(t *testing.T) {
	b1 := batch(1, click("a", "userId", "u", "p1", 10), click("b", "userId", "u", "p2", 5))
	b2 := batch(3, click("c", "userId", "u", "p3", 7), click("d", "userId", "u", "p1", 1))
	lists := func(order ...[]hostsim.Event) []string {
		e := newEnv(t)
		for _, b := range order {
			e.invoke("RecentlyViewed", hostsim.EventHubBatch("RecentlyViewed", "events", partition, b, nil))
		}
		_, body := e.getRecent("u", "")
		return products(body)
	}
	x, y := lists(b1, b2), lists(b2, b1, b2)
	if diff := cmp.Diff(x, y); diff != "" || fmt.Sprint(x) != "[p1 p3 p2]" {
		t.Fatalf("order changed the list: %v vs %v", x, y)
	}
}

func TestRecentlyViewedTransientFailureRetriesThenParks(t *testing.T) {
	e := newEnv(t)
	evs := batch(50, click("e1", "userId", "u1", "p1", 1), []byte("junk"))
	e.store.down = true

	// Before the last retry: the invocation fails so the host retries (and the checkpoint waits).
	res := e.invoke("RecentlyViewed", hostsim.EventHubBatch("RecentlyViewed", "events", partition, evs, &protocol.RetryContext{RetryCount: 1, MaxRetryCount: 3}))
	if res.Status < 500 {
		t.Fatalf("status %d, want a failed invocation", res.Status)
	}
	// On the last retry: the batch is parked and the invocation succeeds.
	res = e.invoke("RecentlyViewed", hostsim.EventHubBatch("RecentlyViewed", "events", partition, evs, &protocol.RetryContext{RetryCount: 3, MaxRetryCount: 3}))
	if res.Status != 200 {
		t.Fatalf("last retry status %d: %s", res.Status, res.Raw)
	}
	kinds := map[string]int{}
	e.dead.List(context.Background(), "RecentlyViewed", func(r deadletter.Record) error { kinds[r.Kind]++; return nil })
	// The poison event is parked with the rest (a replay decides it again and returns it to poison).
	if kinds[deadletter.KindParked] != 2 || kinds[deadletter.KindPoison] != 0 {
		t.Fatalf("dead letters by kind = %v, want 2 parked", kinds)
	}

	// While the store is down, the replay timer fails and keeps the record.
	timer := hostsim.Timer("ReplayDeadLetters", "timer", t0, t0.Add(15*time.Minute), false, nil)
	if res := e.invoke("ReplayDeadLetters", timer); res.Status < 500 {
		t.Fatalf("replay with store down: status %d", res.Status)
	}
	// Once healthy, the timer replays the parked click; the poison record stays.
	e.store.down = false
	if res := e.invoke("ReplayDeadLetters", timer); res.Status != 200 {
		t.Fatalf("replay: status %d %s", res.Status, res.Raw)
	}
	if _, b := e.getRecent("u1", ""); fmt.Sprint(products(b)) != "[p1]" {
		t.Fatalf("after replay u1 = %v", products(b))
	}
	kinds = map[string]int{}
	e.dead.List(context.Background(), "RecentlyViewed", func(r deadletter.Record) error { kinds[r.Kind]++; return nil })
	if kinds[deadletter.KindParked] != 0 || kinds[deadletter.KindPoison] != 1 {
		t.Fatalf("after replay dead letters = %v", kinds)
	}
}

func TestRecentlyViewedUndecodableBatchIsDeadLettered(t *testing.T) {
	e := newEnv(t)
	res := e.invoke("RecentlyViewed", []byte(`{"Data":{"events":"{not an array"},"Metadata":{}}`))
	if res.Status != 200 {
		t.Fatalf("status %d", res.Status)
	}
	n := 0
	e.dead.List(context.Background(), "RecentlyViewed", func(r deadletter.Record) error {
		n++
		if !strings.Contains(r.Reason, "undecodable batch") {
			t.Errorf("reason %q", r.Reason)
		}
		return nil
	})
	if n != 1 {
		t.Fatalf("%d records", n)
	}
}

func TestGetRecentlyViewedBadRequests(t *testing.T) {
	e := newEnv(t)
	for _, q := range []string{"?limit=0", "?limit=21", "?limit=ten"} {
		out, _ := e.getRecent("u1", q)
		if out.StatusCode != "400" || out.Headers["Content-Type"] != "application/problem+json" {
			t.Errorf("%s: %+v", q, out)
		}
		var p struct {
			Status int    `json:"status"`
			Title  string `json:"title"`
			Errors []struct{ Field string }
		}
		if err := json.Unmarshal([]byte(out.Body), &p); err != nil || p.Status != 400 || len(p.Errors) != 1 || p.Errors[0].Field != "limit" {
			t.Errorf("%s: problem = %s", q, out.Body)
		}
	}
	out, _ := e.getRecent("a#b", "")
	if out.StatusCode != "400" {
		t.Errorf("bad user id: %+v", out)
	}
	if out, b := e.getRecent("nobody", ""); out.StatusCode != "200" || b.Items == nil || len(b.Items) != 0 {
		t.Errorf("unknown viewer: %+v %s", out, out.Body)
	}
}

func TestGetRecentlyViewedForwarded(t *testing.T) {
	// enableForwardingHttpRequest: the host re-sends the caller's request on /api/<route>.
	e := newEnv(t)
	e.invoke("RecentlyViewed", hostsim.EventHubBatch("RecentlyViewed", "events", partition, batch(1, click("a", "userId", "u5", "p7", 1)), nil))
	res, err := http.Get(e.srv.URL + "/api/users/u5/recently-viewed?limit=3&code=secret")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b recentBody
	json.NewDecoder(res.Body).Decode(&b)
	if res.StatusCode != 200 || fmt.Sprint(products(b)) != "[p7]" {
		t.Fatalf("forwarded: %d %v", res.StatusCode, products(b))
	}
	res2, _ := http.Get(e.srv.URL + "/api/users/u5/recently-viewed?limit=99")
	if res2.StatusCode != 400 || res2.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("forwarded bad limit: %d %s", res2.StatusCode, res2.Header.Get("Content-Type"))
	}
}

func TestUnknownFunctionIs404(t *testing.T) {
	e := newEnv(t)
	res := e.invoke("NoSuchFunction", []byte(`{"Data":{}}`))
	if res.Status != 404 {
		t.Fatalf("status %d", res.Status)
	}
}

func TestHealth(t *testing.T) {
	e := newEnv(t)
	res, err := http.Get(e.srv.URL + "/")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET / = %v %v", res, err)
	}
}
