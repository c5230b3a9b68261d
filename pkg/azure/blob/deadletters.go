package blob

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	sdkblob "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/contoso/eventpipeline/pkg/deadletter"
	"github.com/contoso/eventpipeline/pkg/settings"
)

// DeadLetters is the deadletter.Store kept in a blob container: one indented JSON blob per record,
// named <function>/<id>.json, so records can be read
// and fixed by hand in Storage Explorer.
type DeadLetters struct {
	sdk       *azblob.Client
	container string
}

var _ deadletter.Store = (*DeadLetters)(nil)

// DeadLetters is the store in the account's dead-letter container (settings.BlobDeadLetter).
func (c *Client) DeadLetters() *DeadLetters { return NewDeadLetters(c, settings.BlobDeadLetter) }

// NewDeadLetters is the store in another container (tests use one per run).
func NewDeadLetters(c *Client, container string) *DeadLetters {
	return &DeadLetters{sdk: c.sdk, container: container}
}

// safe keeps a name to one path segment, so a function or id holding "/"
// cannot make a record appear under another function's prefix.
func safe(s string) string {
	return strings.NewReplacer("/", "_", "\\", "_", "..", "_").Replace(s)
}

func blobName(function, id string) string { return safe(function) + "/" + safe(id) + ".json" }

// Put implements deadletter.Store. Each record overwrites its blob, so putting a record twice keeps one.
func (d *DeadLetters) Put(ctx context.Context, recs ...deadletter.Record) error {
	for _, r := range recs {
		if r.ID == "" || r.Function == "" {
			return fmt.Errorf("blob deadletter put: record needs ID and Function (got %q, %q)", r.ID, r.Function)
		}
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return fmt.Errorf("blob deadletter put %s/%s: %w", r.Function, r.ID, err)
		}
		name := blobName(r.Function, r.ID)
		_, err = d.sdk.UploadBuffer(ctx, d.container, name, b, &azblob.UploadBufferOptions{
			HTTPHeaders: &sdkblob.HTTPHeaders{BlobContentType: to.Ptr("application/json")},
		})
		if err != nil {
			return fmt.Errorf("blob deadletter put %s/%s: %w", d.container, name, err)
		}
	}
	return nil
}

// List implements deadletter.Store. A missing container holds no records.
func (d *DeadLetters) List(ctx context.Context, function string, fn func(deadletter.Record) error) error {
	opts := &azblob.ListBlobsFlatOptions{}
	prefix := ""
	if function != "" {
		prefix = safe(function) + "/"
		opts.Prefix = &prefix
	}
	pager := d.sdk.NewListBlobsFlatPager(d.container, opts)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if bloberror.HasCode(err, bloberror.ContainerNotFound) {
			return nil
		} else if err != nil {
			return fmt.Errorf("blob deadletter list %s/%s: %w", d.container, prefix, err)
		}
		for _, item := range page.Segment.BlobItems {
			if item.Name == nil || !strings.HasSuffix(*item.Name, ".json") {
				continue
			}
			rec, found, err := d.read(ctx, *item.Name)
			if err != nil {
				return err
			}
			if !found {
				continue // deleted since the listing (a concurrent replay)
			}
			if err := fn(rec); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *DeadLetters) read(ctx context.Context, name string) (deadletter.Record, bool, error) {
	var rec deadletter.Record
	resp, err := d.sdk.DownloadStream(ctx, d.container, name, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound) {
		return rec, false, nil
	} else if err != nil {
		return rec, false, fmt.Errorf("blob deadletter read %s/%s: %w", d.container, name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return rec, false, fmt.Errorf("blob deadletter read %s/%s: %w", d.container, name, err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, false, fmt.Errorf("blob deadletter read %s/%s: decode: %w", d.container, name, err)
	}
	return rec, true, nil
}

// Delete implements deadletter.Store; deleting a missing record is not an error.
func (d *DeadLetters) Delete(ctx context.Context, function, id string) error {
	name := blobName(function, id)
	_, err := d.sdk.DeleteBlob(ctx, d.container, name, nil)
	if err != nil && !bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
		return fmt.Errorf("blob deadletter delete %s/%s: %w", d.container, name, err)
	}
	return nil
}
