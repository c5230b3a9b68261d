package settings

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFeedbackSettings(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		principals map[string]string
		rate       int
		badSetting string // the setting the error must name
	}{
		{name: "defaults", principals: map[string]string{}, rate: 600},
		{name: "set", env: map[string]string{
			"PARTNER_PRINCIPALS":             `{"11111111-2222-3333-4444-555555555555":"acme","app-2":"globex-eu"}`,
			"FEEDBACK_RATE_LIMIT_PER_MINUTE": "120",
		}, principals: map[string]string{"11111111-2222-3333-4444-555555555555": "acme", "app-2": "globex-eu"}, rate: 120},
		{name: "not JSON", env: map[string]string{"PARTNER_PRINCIPALS": "acme=1"}, badSetting: "PARTNER_PRINCIPALS"},
		{name: "not an object", env: map[string]string{"PARTNER_PRINCIPALS": `["acme"]`}, badSetting: "PARTNER_PRINCIPALS"},
		{name: "not strings", env: map[string]string{"PARTNER_PRINCIPALS": `{"a":1}`}, badSetting: "PARTNER_PRINCIPALS"},
		{name: "bad partner id", env: map[string]string{"PARTNER_PRINCIPALS": `{"a":"Acme Corp"}`}, badSetting: "PARTNER_PRINCIPALS"},
		{name: "empty principal", env: map[string]string{"PARTNER_PRINCIPALS": `{"":"acme"}`}, badSetting: "PARTNER_PRINCIPALS"},
		{name: "rate zero", env: map[string]string{"FEEDBACK_RATE_LIMIT_PER_MINUTE": "0"}, badSetting: "FEEDBACK_RATE_LIMIT_PER_MINUTE"},
		{name: "rate not a number", env: map[string]string{"FEEDBACK_RATE_LIMIT_PER_MINUTE": "lots"}, badSetting: "FEEDBACK_RATE_LIMIT_PER_MINUTE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(func(k string) string { return tt.env[k] })
			if tt.badSetting != "" {
				var se *Error
				if !errors.As(err, &se) || se.Name != tt.badSetting || !strings.Contains(err.Error(), tt.badSetting) {
					t.Fatalf("Load error = %v, want one naming %s", err, tt.badSetting)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.principals, cfg.PartnerPrincipals); diff != "" {
				t.Errorf("PartnerPrincipals (-want +got):\n%s", diff)
			}
			if cfg.FeedbackRatePerMinute != tt.rate {
				t.Errorf("FeedbackRatePerMinute = %d, want %d", cfg.FeedbackRatePerMinute, tt.rate)
			}
		})
	}
}
