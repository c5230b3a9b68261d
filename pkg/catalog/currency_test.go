package catalog_test

import (
	"slices"
	"testing"

	"golang.org/x/text/currency"

	"github.com/contoso/eventpipeline/pkg/catalog"
)

// TestCurrenciesAreISO cross-checks the list against the ISO 4217 codes golang.org/x/text knows (its
// CLDR 32 tables, 2017), which catches a mistyped code. Codes introduced after CLDR 32 are listed
// here explicitly.
func TestCurrenciesAreISO(t *testing.T) {
	newer := map[string]string{
		"MRU": "Mauritania, 2018", "STN": "São Tomé and Príncipe, 2018", "VES": "Venezuela, 2018",
		"VED": "Venezuela, 2021", "SLE": "Sierra Leone, 2022", "ZWG": "Zimbabwe, 2024", "XCG": "Curaçao and Sint Maarten, 2025",
	}
	codes := catalog.Currencies()
	if !slices.IsSorted(codes) || len(slices.Compact(slices.Clone(codes))) != len(codes) {
		t.Fatalf("Currencies() must be sorted and distinct: %v", codes)
	}
	for _, c := range codes {
		if _, ok := newer[c]; ok {
			continue
		}
		u, err := currency.ParseISO(c)
		if err != nil || u.String() != c {
			t.Errorf("%s is not an ISO 4217 code known to CLDR 32: %v", c, err)
		}
	}
	for c := range newer {
		if !catalog.IsCurrency(c) {
			t.Errorf("%s missing", c)
		}
	}
	if n := len(codes); n < 150 || n > 170 {
		t.Errorf("%d codes; ISO 4217 has about 160 circulating currencies", n)
	}
}

func TestIsCurrencyRejects(t *testing.T) {
	for _, c := range []string{
		"", "eur", "Eur", "EURO", "E", "€",
		"DEM", "FRF", "HRK", "ANG", "ZWL", "SLL", "CUC", "MRO", "STD", "VEF", // withdrawn
		"XAU", "XAG", "XTS", "XXX", "XDR", "BOV", "USN", // not currencies a price is in
	} {
		if catalog.IsCurrency(c) {
			t.Errorf("IsCurrency(%q) = true", c)
		}
	}
	for _, c := range []string{"EUR", "USD", "GBP", "JPY", "CHF", "SEK", "XOF", "XAF"} {
		if !catalog.IsCurrency(c) {
			t.Errorf("IsCurrency(%q) = false", c)
		}
	}
}
