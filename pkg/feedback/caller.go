package feedback

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// PartnerKeyPrefix starts the name of every partner's function key: partner-<partnerId>.
const PartnerKeyPrefix = "partner-"

// Credentials are what the platform tells about a caller.
type Credentials struct {
	// KeyName is the name of the function key the host accepted (claim
	// http://schemas.microsoft.com/2017/07/functions/claims/keyid), "" when none.
	KeyName string
	// Principal is the caller App Service Authentication (Entra ID) signed in, nil when none.
	Principal *Principal
}

// Principal is an App Service Authentication caller: the X-MS-CLIENT-PRINCIPAL claims and the
// X-MS-CLIENT-PRINCIPAL-ID header.
type Principal struct {
	ID     string
	Claims []Claim
}

// Claim is one claim of a Principal.
type Claim struct {
	Type  string `json:"typ"`
	Value string `json:"val"`
}

// principalClaims are the claims that name the calling application, most specific first: an
// app-only token carries appid (v1) or azp (v2), and oid, the object id of its service principal.
var principalClaims = []string{
	"appid", "azp",
	"http://schemas.microsoft.com/identity/claims/objectidentifier", "oid",
}

// DecodeClientPrincipal decodes App Service Authentication's X-MS-CLIENT-PRINCIPAL header:
// base64 of {"auth_typ":"aad","claims":[{"typ":"...","val":"..."}],...}.
func DecodeClientPrincipal(header string) (*Principal, error) {
	header = strings.TrimSpace(header)
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err = enc.DecodeString(header); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("X-MS-CLIENT-PRINCIPAL is not base64: %w", err)
	}
	var p struct {
		Claims []Claim `json:"claims"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("X-MS-CLIENT-PRINCIPAL is not a client principal: %w", err)
	}
	return &Principal{Claims: p.Claims}, nil
}

// Partners tells which partner a caller is.
type Partners struct {
	// Principals maps an Entra application (client) id or service principal object id to a
	// partner id (setting PARTNER_PRINCIPALS). Empty means Entra callers are not partners, and the
	// X-MS-CLIENT-PRINCIPAL header is not trusted at all.
	Principals map[string]string
}

// Identify returns the partner id of the caller:
//   - a function key named partner-<partnerId> makes the caller that partner;
//   - an App Service Authentication principal whose appid/azp/oid (or principal id) is mapped in
//     Principals makes the caller the mapped partner (Functions still asks such callers for a
//     function key; a shared non-partner key is fine, the token decides);
//   - a partner key and a mapped principal naming different partners are refused.
//
// No credentials at all is ErrUnauthenticated; credentials that make no partner (the default or
// master key, an unmapped principal) are ErrForbidden.
func (p Partners) Identify(c Credentials) (string, error) {
	keyPartner := ""
	if name, ok := cutPrefixFold(c.KeyName, PartnerKeyPrefix); ok {
		id := strings.ToLower(name)
		if !ValidPartnerID(id) {
			return "", fmt.Errorf("%w: function key %q does not name a valid partner id", ErrForbidden, c.KeyName)
		}
		keyPartner = id
	}
	principalPartner := ""
	if c.Principal != nil && len(p.Principals) > 0 {
		principalPartner = p.lookup(c.Principal)
	}
	switch {
	case keyPartner != "" && principalPartner != "" && keyPartner != principalPartner:
		return "", fmt.Errorf("%w: the function key names partner %q but the signed-in application is partner %q", ErrForbidden, keyPartner, principalPartner)
	case keyPartner != "":
		return keyPartner, nil
	case principalPartner != "":
		return principalPartner, nil
	case c.Principal != nil && len(p.Principals) > 0:
		return "", fmt.Errorf("%w: the signed-in application is not mapped to a partner (PARTNER_PRINCIPALS)", ErrForbidden)
	case c.KeyName != "":
		return "", fmt.Errorf("%w: function key %q is not a partner key (%s<partnerId>)", ErrForbidden, c.KeyName, PartnerKeyPrefix)
	case c.Principal != nil:
		return "", fmt.Errorf("%w: Entra ID callers are not mapped to partners (PARTNER_PRINCIPALS is empty)", ErrForbidden)
	}
	return "", ErrUnauthenticated
}

func (p Partners) lookup(pr *Principal) string {
	for _, typ := range principalClaims {
		for _, cl := range pr.Claims {
			if strings.EqualFold(cl.Type, typ) {
				if id, ok := p.Principals[cl.Value]; ok {
					return id
				}
			}
		}
	}
	if pr.ID != "" {
		return p.Principals[pr.ID]
	}
	return ""
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}

// ValidPartnerID reports whether id can be a partner id: 1 to 64 lower-case letters, digits, '.',
// '_' or '-', starting with a letter or digit. Function key names are compared without regard to
// case by the host, so partner ids are lower case. (pkg/settings applies the same rule to
// PARTNER_PRINCIPALS.)
func ValidPartnerID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}
