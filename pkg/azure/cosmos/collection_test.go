package cosmos

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/contoso/eventpipeline/pkg/settings"
)

func TestWithTTL(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{`{"id":"a","n":1}`, `{"id":"a","n":1,"ttl":30}`},
		{`{}`, `{"ttl":30}`},
		{`{ }`, `{ "ttl":30}`},
		{"{\"id\":\"a\"}\n", "{\"id\":\"a\",\"ttl\":30}\n"},
		{`{"id":"}","o":{"x":{}}}`, `{"id":"}","o":{"x":{}},"ttl":30}`},
	}
	for _, tt := range tests {
		got, err := withTTL([]byte(tt.in), 30)
		if err != nil || string(got) != tt.want {
			t.Errorf("withTTL(%s) = %s, %v; want %s", tt.in, got, err, tt.want)
			continue
		}
		if !json.Valid(got) {
			t.Errorf("withTTL(%s) = %s: not JSON", tt.in, got)
		}
	}
	for _, in := range []string{``, `   `, `}`, `{`, `[]`, `"x"`, `null`, `[{}]`} {
		if got, err := withTTL([]byte(in), 30); err == nil {
			t.Errorf("withTTL(%q) = %s, want an error", in, got)
		}
	}
}

func TestTTLSecondsRoundsUp(t *testing.T) {
	for d, want := range map[time.Duration]int64{
		time.Nanosecond:              1,
		time.Second:                  1,
		1500 * time.Millisecond:      2,
		30 * 24 * time.Hour:          30 * 24 * 3600,
		time.Duration(1<<63 - 1):     1<<31 - 1,
		time.Hour + time.Millisecond: 3601,
	} {
		if got := ttlSeconds(d); got != want {
			t.Errorf("ttlSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestDocument(t *testing.T) {
	type doc struct {
		ID     string `json:"id"`
		UserID string `json:"userId"`
		TTL    int    `json:"ttl,omitempty"`
	}
	c := &Collection[doc]{name: "recent", pkField: "userId"}
	tests := []struct {
		name    string
		pk, id  string
		v       doc
		ttl     time.Duration
		want    string // body, or the error's substring when wantErr
		wantErr bool
	}{
		{"plain", "u", "u", doc{ID: "u", UserID: "u"}, 0, `{"id":"u","userId":"u"}`, false},
		{"ttl", "u", "u", doc{ID: "u", UserID: "u"}, time.Minute, `{"id":"u","userId":"u","ttl":60}`, false},
		{"own ttl without option", "u", "u", doc{ID: "u", UserID: "u", TTL: 5}, 0, `{"id":"u","userId":"u","ttl":5}`, false},
		{"own ttl and option", "u", "u", doc{ID: "u", UserID: "u", TTL: 5}, time.Minute, `own "ttl"`, true},
		{"id mismatch", "u", "x", doc{ID: "u", UserID: "u"}, 0, `"id" is "u", want "x"`, true},
		{"pk mismatch", "v", "u", doc{ID: "u", UserID: "u"}, 0, `partition key field "userId" is "u", want "v"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.document(tt.pk, tt.id, tt.v, tt.ttl)
			switch {
			case tt.wantErr && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			case !tt.wantErr && (err != nil || string(got) != tt.want):
				t.Fatalf("document = %s, %v; want %s", got, err, tt.want)
			}
		})
	}

	if _, err := (&Collection[[]int]{}).document("p", "a", []int{1}, 0); err == nil {
		t.Errorf("a JSON array was accepted as a document")
	}
	if _, err := (&Collection[map[string]int]{}).document("p", "a", map[string]int{"id": 1}, 0); err == nil {
		t.Errorf("a numeric id was accepted")
	}
}

func TestTopLevelField(t *testing.T) {
	for path, want := range map[string]string{
		settings.ContainerRecentlyViewed.PartitionKey: "userId",
		"/id": "id", "/a/b": "", "/": "", "": "", "pk": "",
	} {
		if got := topLevelField(path); got != want {
			t.Errorf("topLevelField(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestListQuery(t *testing.T) {
	for path, want := range map[string]string{
		"/userId": `SELECT * FROM c WHERE c["userId"] = @pk`,
		"/a/b":    `SELECT * FROM c WHERE c["a"]["b"] = @pk`,
		"/value":  `SELECT * FROM c WHERE c["value"] = @pk`,
		`/q"t`:    `SELECT * FROM c WHERE c["q\"t"] = @pk`,
		"":        "SELECT * FROM c",
		"/":       "SELECT * FROM c",
		"pk":      "SELECT * FROM c",
	} {
		if got := listQuery(path); got != want {
			t.Errorf("listQuery(%q) = %s, want %s", path, got, want)
		}
	}
}
