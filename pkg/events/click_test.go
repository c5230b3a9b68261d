package events_test

import (
	"errors"
	"testing"
	"time"

	"github.com/contoso/eventpipeline/pkg/events"
)

var enq = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

func props(m map[string]any) events.Properties {
	return func() (map[string]any, error) { return m, nil }
}

func TestDecodeClick(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		props   map[string]any
		want    events.Click
		wantErr error
	}{
		{
			name: "structured",
			body: `{"specversion":"1.0","id":"e1","source":"/web","type":"com.contoso.clickstream.product.viewed","time":"2026-11-25T08:59:58.123+01:00","datacontenttype":"application/json","data":{"userId":"u1","sessionId":"s1","productId":"p1","category":"tools","page":"/p/p1"}}`,
			want: events.Click{ID: "e1", Source: "/web", Type: events.TypeProductViewed, Time: time.Date(2026, 11, 25, 7, 59, 58, 123e6, time.UTC), UserID: "u1", SessionID: "s1", ProductID: "p1", Category: "tools", Page: "/p/p1"},
		},
		{
			name: "structured anonymous, no time uses enqueued time",
			body: `{"specversion":"1.0","id":"e2","source":"/app","type":"com.contoso.clickstream.product.viewed","data":{"sessionId":"s9","productId":"p2"}}`,
			want: events.Click{ID: "e2", Source: "/app", Type: events.TypeProductViewed, Time: enq, SessionID: "s9", ProductID: "p2"},
		},
		{
			name: "structured data_base64",
			body: `{"specversion":"1.0","id":"e3","source":"/app","type":"com.contoso.clickstream.product.viewed","time":"2026-11-25T08:00:00Z","data_base64":"eyJ1c2VySWQiOiJ1MiIsInByb2R1Y3RJZCI6InAzIn0="}`,
			want: events.Click{ID: "e3", Source: "/app", Type: events.TypeProductViewed, Time: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC), UserID: "u2", ProductID: "p3"},
		},
		{
			name:  "binary mode, colon prefix",
			body:  `{"userId":"u3","productId":"p4","category":"garden"}`,
			props: map[string]any{"cloudEvents:specversion": "1.0", "cloudEvents:id": "e4", "cloudEvents:source": "/web", "cloudEvents:type": events.TypeProductViewed, "cloudEvents:time": "2026-11-25T08:30:00Z", "content-type": "application/json"},
			want:  events.Click{ID: "e4", Source: "/web", Type: events.TypeProductViewed, Time: time.Date(2026, 11, 25, 8, 30, 0, 0, time.UTC), UserID: "u3", ProductID: "p4", Category: "garden"},
		},
		{
			name:  "binary mode, underscore prefix",
			body:  `{"sessionId":"s5","productId":"p5"}`,
			props: map[string]any{"cloudEvents_specversion": "1.0", "cloudEvents_id": "e5", "cloudEvents_source": "/app", "cloudEvents_type": events.TypeAddedToCart},
			want:  events.Click{ID: "e5", Source: "/app", Type: events.TypeAddedToCart, Time: enq, SessionID: "s5", ProductID: "p5"},
		},
		{name: "other type is skipped", body: `{"specversion":"1.0","id":"x","source":"/s","type":"com.contoso.other","data":{}}`, wantErr: events.ErrOtherType},
		{name: "not json", body: `hello`, wantErr: events.ErrNotJSON},
		{name: "truncated json", body: `{"specversion":"1.0","id":`, wantErr: events.ErrNotJSON},
		{name: "json but not a cloudevent", body: `{"productId":"p1","userId":"u"}`, wantErr: events.ErrNotCloudEvent},
		{name: "wrong specversion", body: `{"specversion":"0.3","id":"x","source":"/s","type":"com.contoso.clickstream.product.viewed","data":{}}`, wantErr: events.ErrNotCloudEvent},
		{name: "missing id", body: `{"specversion":"1.0","source":"/s","type":"com.contoso.clickstream.product.viewed","data":{"productId":"p","userId":"u"}}`, wantErr: events.ErrNotCloudEvent},
		{name: "bad time", body: `{"specversion":"1.0","id":"x","source":"/s","type":"com.contoso.clickstream.product.viewed","time":"yesterday","data":{"productId":"p","userId":"u"}}`, wantErr: events.ErrNotCloudEvent},
		{name: "no product", body: `{"specversion":"1.0","id":"x","source":"/s","type":"com.contoso.clickstream.product.viewed","data":{"userId":"u"}}`, wantErr: events.ErrNoProduct},
		{name: "no viewer", body: `{"specversion":"1.0","id":"x","source":"/s","type":"com.contoso.clickstream.product.viewed","data":{"productId":"p"}}`, wantErr: events.ErrNoViewer},
		{name: "data not an object", body: `{"specversion":"1.0","id":"x","source":"/s","type":"com.contoso.clickstream.product.viewed","data":"p1"}`, wantErr: events.ErrBadData},
		{name: "data field of wrong type", body: `{"specversion":"1.0","id":"x","source":"/s","type":"com.contoso.clickstream.product.viewed","data":{"productId":42,"userId":"u"}}`, wantErr: events.ErrBadData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p events.Properties
			if tt.props != nil {
				p = props(tt.props)
			}
			got, err := events.DecodeClick([]byte(tt.body), p, enq)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestStructuredDoesNotDecodeProperties(t *testing.T) {
	called := false
	p := func() (map[string]any, error) { called = true; return nil, nil }
	_, err := events.DecodeClick([]byte(`{"specversion":"1.0","id":"e","source":"/s","type":"com.contoso.clickstream.product.viewed","data":{"productId":"p","userId":"u"}}`), p, enq)
	if err != nil || called {
		t.Fatalf("err %v, properties decoded: %v", err, called)
	}
}

func TestDeterministicID(t *testing.T) {
	a, b := events.DeterministicID("x", "1"), events.DeterministicID("x", "1")
	if a != b || a == events.DeterministicID("x1") || a == events.DeterministicID("x", "2") {
		t.Fatalf("ids not deterministic or collide: %s %s", a, b)
	}
}

func FuzzDecodeClick(f *testing.F) {
	f.Add([]byte(`{"specversion":"1.0","id":"e1","source":"/web","type":"com.contoso.clickstream.product.viewed","time":"2026-11-25T08:59:58Z","data":{"userId":"u1","productId":"p1"}}`), "1.0")
	f.Add([]byte(`{"userId":"u3","productId":"p4"}`), "1.0")
	f.Add([]byte(`garbage`), "")
	f.Fuzz(func(t *testing.T, body []byte, spec string) {
		p := props(map[string]any{"cloudEvents:specversion": spec, "cloudEvents:id": "i", "cloudEvents:source": "/s", "cloudEvents:type": events.TypeProductViewed})
		c, err := events.DecodeClick(body, p, enq)
		if err == nil && (c.ProductID == "" || c.Viewer() == "" || c.Time.IsZero()) {
			t.Fatalf("accepted an incomplete click: %+v", c)
		}
	})
}
