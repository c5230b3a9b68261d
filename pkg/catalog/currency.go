package catalog

import "strings"

// currencies are the circulating currencies of ISO 4217 (list one, as amended up to 2025: XCG
// replaced ANG, ZWG replaced ZWL, SLE replaced SLL, HRK was withdrawn). Fund codes (BOV, CHE, CHW,
// CLF, COU, MXV, USN, UYI, UYW), precious metals (XAU, XAG, XPD, XPT), bond-market units (XBA-XBD),
// XDR, XSU, XUA, the testing code XTS and "no currency" XXX are deliberately absent: a product is not
// priced in them. The list changes only by ISO amendment; update it (and currency_test.go) then.
const currencies = "" +
	"AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD " +
	"CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP " +
	"GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD " +
	"KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN " +
	"NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP " +
	"SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES " +
	"VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG"

var currencySet = func() map[string]struct{} {
	m := map[string]struct{}{}
	for _, c := range strings.Fields(currencies) {
		m[c] = struct{}{}
	}
	return m
}()

// IsCurrency reports whether code is a circulating ISO 4217 currency code (upper case).
func IsCurrency(code string) bool {
	_, ok := currencySet[code]
	return ok
}

// Currencies returns the accepted codes, sorted (the JSON Schema's enum is checked against it).
func Currencies() []string { return strings.Fields(currencies) }
