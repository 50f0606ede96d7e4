/* A narrow C layer over libavif and libheif (Debian's libavif-dev and libheif-dev).
 *
 * Rust calls only these functions, so it never depends on the layout of the libraries'
 * structures, which change between versions. Every function reports failure with a message
 * copied into `err`; frames come back as malloc'd RGBA8 buffers released with ims_free. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <avif/avif.h>
#include <libheif/heif.h>

typedef struct {
    uint32_t width;
    uint32_t height;
    uint32_t frame_count;
} ims_info;

static void set_err(char *err, size_t errlen, const char *what, const char *detail) {
    if (err && errlen) {
        snprintf(err, errlen, "%s: %s", what, detail ? detail : "unknown error");
    }
}

void ims_free(void *p) { free(p); }

/* ---------- AVIF (stills and sequences) ---------- */

void *ims_avif_open(const uint8_t *data, size_t len, uint32_t max_pixels, ims_info *info, char *err, size_t errlen) {
    avifDecoder *d = avifDecoderCreate();
    if (!d) {
        set_err(err, errlen, "avif", "out of memory");
        return NULL;
    }
    d->maxThreads = 1;
    d->imageSizeLimit = max_pixels;
    d->ignoreExif = AVIF_TRUE;
    d->ignoreXMP = AVIF_TRUE;
    avifResult r = avifDecoderSetIOMemory(d, data, len);
    if (r == AVIF_RESULT_OK) {
        r = avifDecoderParse(d);
    }
    if (r != AVIF_RESULT_OK) {
        set_err(err, errlen, "avif", avifResultToString(r));
        avifDecoderDestroy(d);
        return NULL;
    }
    info->width = d->image->width;
    info->height = d->image->height;
    info->frame_count = d->imageCount > 0 ? (uint32_t)d->imageCount : 1;
    return d;
}

uint8_t *ims_avif_frame(void *handle, uint32_t index, ims_info *info, char *err, size_t errlen) {
    avifDecoder *d = handle;
    avifResult r = avifDecoderNthImage(d, index);
    if (r != AVIF_RESULT_OK) {
        set_err(err, errlen, "avif frame", avifResultToString(r));
        return NULL;
    }
    avifRGBImage rgb;
    avifRGBImageSetDefaults(&rgb, d->image);
    rgb.format = AVIF_RGB_FORMAT_RGBA;
    rgb.depth = 8;
    rgb.rowBytes = rgb.width * 4;
    rgb.pixels = malloc((size_t)rgb.rowBytes * rgb.height);
    if (!rgb.pixels) {
        set_err(err, errlen, "avif frame", "out of memory");
        return NULL;
    }
    r = avifImageYUVToRGB(d->image, &rgb);
    if (r != AVIF_RESULT_OK) {
        free(rgb.pixels);
        set_err(err, errlen, "avif colour conversion", avifResultToString(r));
        return NULL;
    }
    info->width = rgb.width;
    info->height = rgb.height;
    return rgb.pixels;
}

void ims_avif_close(void *handle) { avifDecoderDestroy(handle); }

/* ---------- HEIF / HEIC (top-level images as frames, primary first) ---------- */

typedef struct {
    struct heif_context *ctx;
    heif_item_id *ids;
    int count;
} ims_heif;

void ims_heif_close(void *handle) {
    ims_heif *h = handle;
    if (!h) return;
    if (h->ctx) heif_context_free(h->ctx);
    free(h->ids);
    free(h);
}

void *ims_heif_open(const uint8_t *data, size_t len, uint32_t max_side, ims_info *info, char *err, size_t errlen) {
    ims_heif *h = calloc(1, sizeof(ims_heif));
    if (!h) {
        set_err(err, errlen, "heif", "out of memory");
        return NULL;
    }
    h->ctx = heif_context_alloc();
    heif_context_set_maximum_image_size_limit(h->ctx, (int)max_side);
    struct heif_error e = heif_context_read_from_memory_without_copy(h->ctx, data, len, NULL);
    if (e.code != heif_error_Ok) {
        set_err(err, errlen, "heif", e.message);
        ims_heif_close(h);
        return NULL;
    }
    struct heif_image_handle *primary = NULL;
    heif_item_id primary_id = 0;
    e = heif_context_get_primary_image_ID(h->ctx, &primary_id);
    if (e.code == heif_error_Ok) {
        e = heif_context_get_primary_image_handle(h->ctx, &primary);
    }
    if (e.code != heif_error_Ok) {
        set_err(err, errlen, "heif primary image", e.message);
        ims_heif_close(h);
        return NULL;
    }
    info->width = (uint32_t)heif_image_handle_get_width(primary);
    info->height = (uint32_t)heif_image_handle_get_height(primary);
    heif_image_handle_release(primary);

    int n = heif_context_get_number_of_top_level_images(h->ctx);
    heif_item_id *all = calloc(n > 0 ? (size_t)n : 1, sizeof(heif_item_id));
    h->ids = calloc((size_t)(n > 0 ? n : 1), sizeof(heif_item_id));
    if (!all || !h->ids) {
        free(all);
        set_err(err, errlen, "heif", "out of memory");
        ims_heif_close(h);
        return NULL;
    }
    int got = heif_context_get_list_of_top_level_image_IDs(h->ctx, all, n);
    h->ids[0] = primary_id;
    h->count = 1;
    for (int i = 0; i < got && h->count < n; i++) {
        if (all[i] != primary_id) h->ids[h->count++] = all[i];
    }
    free(all);
    info->frame_count = (uint32_t)h->count;
    return h;
}

uint8_t *ims_heif_frame(void *handle, uint32_t index, ims_info *info, char *err, size_t errlen) {
    ims_heif *h = handle;
    if ((int)index >= h->count) {
        set_err(err, errlen, "heif frame", "index out of range");
        return NULL;
    }
    struct heif_image_handle *ih = NULL;
    struct heif_error e = heif_context_get_image_handle(h->ctx, h->ids[index], &ih);
    if (e.code != heif_error_Ok) {
        set_err(err, errlen, "heif frame", e.message);
        return NULL;
    }
    struct heif_image *img = NULL;
    e = heif_decode_image(ih, &img, heif_colorspace_RGB, heif_chroma_interleaved_RGBA, NULL);
    heif_image_handle_release(ih);
    if (e.code != heif_error_Ok) {
        set_err(err, errlen, "heif decode", e.message);
        return NULL;
    }
    int stride = 0;
    const uint8_t *plane = heif_image_get_plane_readonly(img, heif_channel_interleaved, &stride);
    int w = heif_image_get_width(img, heif_channel_interleaved);
    int ht = heif_image_get_height(img, heif_channel_interleaved);
    if (!plane || w <= 0 || ht <= 0) {
        heif_image_release(img);
        set_err(err, errlen, "heif decode", "no interleaved RGBA plane");
        return NULL;
    }
    uint8_t *out = malloc((size_t)w * 4 * (size_t)ht);
    if (!out) {
        heif_image_release(img);
        set_err(err, errlen, "heif decode", "out of memory");
        return NULL;
    }
    for (int y = 0; y < ht; y++) {
        memcpy(out + (size_t)y * w * 4, plane + (size_t)y * stride, (size_t)w * 4);
    }
    heif_image_release(img);
    info->width = (uint32_t)w;
    info->height = (uint32_t)ht;
    return out;
}

/* ---------- camera RAW (LibRaw: DNG, CR2, NEF and the rest of its family) ---------- */

#include <libraw/libraw.h>

static libraw_data_t *raw_open(const uint8_t *data, size_t len, char *err, size_t errlen) {
    libraw_data_t *lr = libraw_init(0);
    if (!lr) {
        set_err(err, errlen, "raw", "out of memory");
        return NULL;
    }
    int r = libraw_open_buffer(lr, (void *)data, len);
    if (r != LIBRAW_SUCCESS) {
        set_err(err, errlen, "raw", libraw_strerror(r));
        libraw_close(lr);
        return NULL;
    }
    return lr;
}

/* The size of the developed image (rotation applied), from the metadata alone. */
int ims_raw_probe(const uint8_t *data, size_t len, ims_info *info, char *err, size_t errlen) {
    libraw_data_t *lr = raw_open(data, len, err, errlen);
    if (!lr) return -1;
    uint32_t w = lr->sizes.width, h = lr->sizes.height;
    int swap = lr->sizes.flip & 4;
    info->width = swap ? h : w;
    info->height = swap ? w : h;
    info->frame_count = 1;
    libraw_close(lr);
    return 0;
}

/* Develops the RAW at half size (one RGB pixel per 2x2 sensor block: four times less work, and
 * still above the working size for any camera), camera white balance, 8-bit sRGB, as RGBA. */
uint8_t *ims_raw_decode(const uint8_t *data, size_t len, ims_info *info, char *err, size_t errlen) {
    libraw_data_t *lr = raw_open(data, len, err, errlen);
    if (!lr) return NULL;
    lr->params.half_size = 1;
    lr->params.use_camera_wb = 1;
    lr->params.output_bps = 8;
    int r = libraw_unpack(lr);
    if (r == LIBRAW_SUCCESS) r = libraw_dcraw_process(lr);
    if (r != LIBRAW_SUCCESS) {
        set_err(err, errlen, "raw develop", libraw_strerror(r));
        libraw_close(lr);
        return NULL;
    }
    int errc = 0;
    libraw_processed_image_t *img = libraw_dcraw_make_mem_image(lr, &errc);
    if (!img || img->type != LIBRAW_IMAGE_BITMAP || img->colors != 3 || img->bits != 8) {
        set_err(err, errlen, "raw develop", img ? "unexpected output layout" : libraw_strerror(errc));
        if (img) libraw_dcraw_clear_mem(img);
        libraw_close(lr);
        return NULL;
    }
    size_t pixels = (size_t)img->width * img->height;
    uint8_t *out = malloc(pixels * 4);
    if (out) {
        for (size_t i = 0; i < pixels; i++) {
            out[i * 4] = img->data[i * 3];
            out[i * 4 + 1] = img->data[i * 3 + 1];
            out[i * 4 + 2] = img->data[i * 3 + 2];
            out[i * 4 + 3] = 255;
        }
        info->width = img->width;
        info->height = img->height;
    } else {
        set_err(err, errlen, "raw develop", "out of memory");
    }
    libraw_dcraw_clear_mem(img);
    libraw_close(lr);
    return out;
}
