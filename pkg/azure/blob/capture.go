package blob

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	sdkblob "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/contoso/eventpipeline/pkg/capture"
	"github.com/contoso/eventpipeline/pkg/jobs"
)

// CaptureFiles is the capture.Source of an Event Hubs Capture container (CAPTURE_CONTAINER).
type CaptureFiles struct {
	sdk       *azblob.Client
	container string
}

var _ capture.Source = (*CaptureFiles)(nil)

// CaptureFiles is the Capture container named container.
func (c *Client) CaptureFiles(container string) *CaptureFiles {
	return &CaptureFiles{sdk: c.sdk, container: container}
}

// List implements capture.Source: the namespaces and partitions are found with hierarchical listings
// (Capture's layout puts the partition before the date), then each partition's day is listed by
// prefix. A missing container holds no files.
func (s *CaptureFiles) List(ctx context.Context, hub string, day time.Time) ([]capture.File, error) {
	cc := s.sdk.ServiceClient().NewContainerClient(s.container)
	namespaces, err := prefixes(ctx, cc, "")
	if err != nil {
		return nil, err
	}
	var out []capture.File
	for _, ns := range namespaces {
		partitions, err := prefixes(ctx, cc, ns+hub+"/")
		if err != nil {
			return nil, err
		}
		for _, p := range partitions {
			seg := strings.Split(strings.TrimSuffix(p, "/"), "/")
			prefix := capture.DayPrefix(strings.TrimSuffix(ns, "/"), hub, seg[len(seg)-1], day)
			pager := s.sdk.NewListBlobsFlatPager(s.container, &azblob.ListBlobsFlatOptions{Prefix: &prefix})
			for pager.More() {
				page, err := pager.NextPage(ctx)
				if bloberror.HasCode(err, bloberror.ContainerNotFound) {
					return nil, nil
				} else if err != nil {
					return nil, fmt.Errorf("blob capture list %s/%s: %w", s.container, prefix, err)
				}
				for _, item := range page.Segment.BlobItems {
					if item.Name == nil || !strings.HasSuffix(*item.Name, capture.Extension) {
						continue
					}
					path, err := capture.ParsePath(*item.Name)
					if err != nil {
						continue // not a Capture file name
					}
					f := capture.File{Name: *item.Name, Path: path}
					if item.Properties != nil && item.Properties.ContentLength != nil {
						f.Size = *item.Properties.ContentLength
					}
					out = append(out, f)
				}
			}
		}
	}
	capture.SortFiles(out)
	return out, nil
}

// prefixes lists the "folders" directly under prefix.
func prefixes(ctx context.Context, cc *container.Client, prefix string) ([]string, error) {
	var out []string
	pager := cc.NewListBlobsHierarchyPager("/", &container.ListBlobsHierarchyOptions{Prefix: to.Ptr(prefix)})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if bloberror.HasCode(err, bloberror.ContainerNotFound) {
			return nil, nil
		} else if err != nil {
			return nil, fmt.Errorf("blob capture list %q: %w", prefix, err)
		}
		for _, p := range page.Segment.BlobPrefixes {
			if p.Name != nil {
				out = append(out, *p.Name)
			}
		}
	}
	return out, nil
}

// Open implements capture.Source: the download stream, resumed by the SDK's retry reader (up to 3
// times) when the connection drops, and the blob's size.
func (s *CaptureFiles) Open(ctx context.Context, name string) (io.ReadCloser, int64, error) {
	resp, err := s.sdk.DownloadStream(ctx, s.container, name, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
		return nil, 0, fmt.Errorf("blob capture open %s/%s: %w", s.container, name, capture.ErrNotFound)
	} else if err != nil {
		return nil, 0, fmt.Errorf("blob capture open %s/%s: %w", s.container, name, err)
	}
	var size int64
	if resp.ContentLength != nil {
		size = *resp.ContentLength
	}
	return resp.NewRetryReader(ctx, &sdkblob.RetryReaderOptions{MaxRetries: 3}), size, nil
}

// Objects is a jobs.Objects in a blob container (the reports container).
type Objects struct {
	sdk       *azblob.Client
	container string
}

var _ jobs.Objects = (*Objects)(nil)

// Objects is the container named container as a jobs.Objects.
func (c *Client) Objects(container string) *Objects {
	return &Objects{sdk: c.sdk, container: container}
}

// Put implements jobs.Objects.
func (o *Objects) Put(ctx context.Context, name string, data []byte, contentType string) error {
	_, err := o.sdk.UploadBuffer(ctx, o.container, name, data, &azblob.UploadBufferOptions{
		HTTPHeaders: &sdkblob.HTTPHeaders{BlobContentType: to.Ptr(contentType)},
	})
	if err != nil {
		return fmt.Errorf("blob put %s/%s: %w", o.container, name, err)
	}
	return nil
}

// Get implements jobs.Objects.
func (o *Objects) Get(ctx context.Context, name string) ([]byte, error) {
	resp, err := o.sdk.DownloadStream(ctx, o.container, name, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
		return nil, fmt.Errorf("blob get %s/%s: %w", o.container, name, jobs.ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("blob get %s/%s: %w", o.container, name, err)
	}
	body := resp.NewRetryReader(ctx, &sdkblob.RetryReaderOptions{MaxRetries: 3})
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, fmt.Errorf("blob get %s/%s: %w", o.container, name, err)
	}
	return b, nil
}

// URL implements jobs.Objects: the blob's URL without any SAS query (an event must not carry a
// credential; readers authenticate themselves).
func (o *Objects) URL(name string) string {
	u, err := url.Parse(o.sdk.URL())
	if err != nil {
		return o.container + "/" + name
	}
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + o.container + "/" + name
	u.RawPath = ""
	return u.String()
}
