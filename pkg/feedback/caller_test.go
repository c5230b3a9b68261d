package feedback

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestIdentify(t *testing.T) {
	p := Partners{Principals: map[string]string{"app-acme": "acme", "oid-globex": "globex"}}
	app := func(claims ...Claim) *Principal { return &Principal{Claims: claims} }
	tests := []struct {
		name  string
		p     Partners
		c     Credentials
		want  string
		error error
	}{
		{"partner key", p, Credentials{KeyName: "partner-acme"}, "acme", nil},
		{"partner key, any case", p, Credentials{KeyName: "Partner-ACME"}, "acme", nil},
		{"default key", p, Credentials{KeyName: "default"}, "", ErrForbidden},
		{"master key", p, Credentials{KeyName: "master"}, "", ErrForbidden},
		{"partner key naming nobody", p, Credentials{KeyName: "partner-"}, "", ErrForbidden},
		{"partner key with a bad id", p, Credentials{KeyName: "partner-a/b"}, "", ErrForbidden},
		{"nothing", p, Credentials{}, "", ErrUnauthenticated},
		{"entra app id with a shared key", p, Credentials{KeyName: "default", Principal: app(Claim{"appid", "app-acme"})}, "acme", nil},
		{"entra azp", p, Credentials{KeyName: "entra", Principal: app(Claim{"azp", "app-acme"})}, "acme", nil},
		{"entra object id", p, Credentials{Principal: app(Claim{"http://schemas.microsoft.com/identity/claims/objectidentifier", "oid-globex"})}, "globex", nil},
		{"entra principal id header", p, Credentials{Principal: &Principal{ID: "oid-globex"}}, "globex", nil},
		{"entra unmapped", p, Credentials{KeyName: "default", Principal: app(Claim{"appid", "stranger"})}, "", ErrForbidden},
		{"entra not trusted without a mapping", Partners{}, Credentials{KeyName: "default", Principal: app(Claim{"appid", "app-acme"})}, "", ErrForbidden},
		{"partner key wins over an unmapped principal", p, Credentials{KeyName: "partner-acme", Principal: app(Claim{"appid", "stranger"})}, "acme", nil},
		{"key and token agree", p, Credentials{KeyName: "partner-acme", Principal: app(Claim{"appid", "app-acme"})}, "acme", nil},
		{"key and token disagree", p, Credentials{KeyName: "partner-acme", Principal: app(Claim{"appid", "oid-globex"})}, "", ErrForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.p.Identify(tt.c)
			if got != tt.want || !errors.Is(err, tt.error) || (tt.error == nil) != (err == nil) {
				t.Fatalf("Identify = %q, %v; want %q, %v", got, err, tt.want, tt.error)
			}
		})
	}
}

func TestDecodeClientPrincipal(t *testing.T) {
	raw := `{"auth_typ":"aad","claims":[{"typ":"appid","val":"app-acme"},{"typ":"http://schemas.microsoft.com/identity/claims/objectidentifier","val":"oid-1"}],"name_typ":"name","role_typ":"roles"}`
	want := &Principal{Claims: []Claim{{"appid", "app-acme"}, {"http://schemas.microsoft.com/identity/claims/objectidentifier", "oid-1"}}}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
		got, err := DecodeClientPrincipal(enc.EncodeToString([]byte(raw)))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("principal (-want +got):\n%s", diff)
		}
	}
	for _, bad := range []string{"%%%", base64.StdEncoding.EncodeToString([]byte("not json"))} {
		if _, err := DecodeClientPrincipal(bad); err == nil {
			t.Errorf("DecodeClientPrincipal(%q) accepted", bad)
		}
	}
}

func TestValidPartnerID(t *testing.T) {
	for id, want := range map[string]bool{"acme": true, "acme-eu.2": true, "a_b": true, "": false, "-acme": false, "Acme": false, "a b": false, "a/b": false} {
		if ValidPartnerID(id) != want {
			t.Errorf("ValidPartnerID(%q) = %v", id, !want)
		}
	}
}

func TestLimiter(t *testing.T) {
	l := NewLimiter(60) // 1 a second, bursts of 10
	now := t0
	for i := range 10 {
		if ok, _ := l.Allow("acme", now); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, wait := l.Allow("acme", now)
	if ok || wait != time.Second {
		t.Fatalf("11th request: %v, retry after %v; want refused, 1s", ok, wait)
	}
	if ok, _ := l.Allow("globex", now); !ok {
		t.Fatal("another partner is limited by acme's use")
	}
	if ok, _ := l.Allow("acme", now.Add(1500*time.Millisecond)); !ok {
		t.Fatal("a token did not come back after 1.5 s")
	}
	if ok, _ := l.Allow("acme", now.Add(1600*time.Millisecond)); ok {
		t.Fatal("more than the rate after the burst")
	}
	// A quiet hour refills to the burst, not beyond.
	later := now.Add(time.Hour)
	n := 0
	for {
		if ok, _ := l.Allow("acme", later); !ok {
			break
		}
		n++
	}
	if n != 10 {
		t.Fatalf("after an hour %d requests passed at once, want the burst of 10", n)
	}
	slow := NewLimiter(1)
	slow.Allow("acme", now)
	if ok, wait := slow.Allow("acme", now); ok || wait != time.Minute {
		t.Fatalf("1 a minute: second request %v, retry after %v; want refused, 1m", ok, wait)
	}
}
