"""Dataset-format loaders (GOT-10k, LaSOT, COCO JSON, YouTube-VOS palette PNGs) on tiny fixtures, and the pair
sources / crops they feed."""
import json

import cv2
import numpy as np
import pytest
from PIL import Image

from siamattn_ros.data import formats
from siamattn_ros.data.pairs import AugmentConfig, FramePair, StillPairSource, VideoPairSource, crop_one, crop_pair


def _frame(i: int, box) -> np.ndarray:
    img = np.full((120, 160, 3), 40 + i, np.uint8)
    x, y, w, h = box
    img[y:y + h, x:x + w] = (30, 200, 250)
    return img


def test_got10k_folder(tmp_path):
    seq = tmp_path / "GOT-10k_Train_000001"
    seq.mkdir()
    boxes = [(10 + 5 * i, 20, 30, 40) for i in range(5)]
    for i, b in enumerate(boxes):
        cv2.imwrite(str(seq / f"{i + 1:08d}.jpg"), _frame(i, b))
    (seq / "groundtruth.txt").write_text("".join(f"{x},{y},{w},{h}\n" for x, y, w, h in boxes))
    (seq / "absence.label").write_text("0\n0\n1\n0\n0\n")
    tracks = formats.load_got10k(tmp_path)
    assert len(tracks) == 1 and len(tracks[0].frames) == 5
    assert np.isnan(tracks[0].boxes_xywh[2]).all()
    np.testing.assert_array_equal(tracks[0].boxes_xywh[4], [30, 20, 30, 40])
    pair = VideoPairSource(tracks, frame_range=10).sample(np.random.default_rng(0))
    assert pair.template_image.shape == (120, 160, 3) and not np.isnan(pair.search_box).any()


def test_lasot_layout(tmp_path):
    seq = tmp_path / "airplane" / "airplane-1"
    (seq / "img").mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(seq / "img" / f"{i + 1:08d}.jpg"), _frame(i, (5, 5, 20, 20)))
    (seq / "groundtruth.txt").write_text("5,5,20,20\n5,5,20,20\n6,5,20,20\n")
    (seq / "full_occlusion.txt").write_text("0,1,0")
    tracks = formats.load_got10k(tmp_path)
    assert [t.name for t in tracks] == ["airplane-1"]
    assert np.isnan(tracks[0].boxes_xywh[1]).all() and not np.isnan(tracks[0].boxes_xywh[2]).any()


def test_coco_json_with_polygons(tmp_path):
    img = np.zeros((100, 100, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "a.jpg"), img)
    ann = {"images": [{"id": 7, "file_name": "a.jpg", "width": 100, "height": 100}],
           "annotations": [
               {"id": 1, "image_id": 7, "bbox": [20, 30, 40, 20], "area": 800, "iscrowd": 0,
                "segmentation": [[20, 30, 60, 30, 60, 50, 20, 50]]},
               {"id": 2, "image_id": 7, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 0, "segmentation": []},
               {"id": 3, "image_id": 7, "bbox": [0, 0, 50, 50], "area": 2500, "iscrowd": 1,
                "segmentation": {"counts": [], "size": [100, 100]}}]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(ann))
    inst = formats.load_coco(path, tmp_path)
    assert len(inst) == 1  # tiny and crowd instances dropped
    np.testing.assert_array_equal(inst[0].box_xywh, [20, 30, 40, 20])
    pair = StillPairSource(inst).sample(np.random.default_rng(0))
    ys, xs = np.nonzero(pair.search_mask)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (20, 59, 30, 49)  # polygon [20, 60) x [30, 50)
    with pytest.raises(ValueError, match="annotations"):
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"images": []}))
        formats.load_coco(bad, tmp_path)


def test_youtube_vos_palette_masks(tmp_path):
    (tmp_path / "JPEGImages" / "vid1").mkdir(parents=True)
    (tmp_path / "Annotations" / "vid1").mkdir(parents=True)
    palette = [0, 0, 0, 200, 0, 0, 0, 200, 0] + [0] * (256 * 3 - 9)
    for i in range(3):
        cv2.imwrite(str(tmp_path / "JPEGImages" / "vid1" / f"{5 * i:05d}.jpg"), np.zeros((60, 80, 3), np.uint8))
        lab = np.zeros((60, 80), np.uint8)
        lab[10:20, 10 + i:30 + i] = 1
        if i != 1:
            lab[40:50, 50:60] = 2  # object 2 absent in frame 1
        im = Image.fromarray(lab, mode="P")
        im.putpalette(palette)
        im.save(tmp_path / "Annotations" / "vid1" / f"{5 * i:05d}.png")
    tracks = formats.load_youtube_vos(tmp_path)
    assert [t.name for t in tracks] == ["vid1/1", "vid1/2"]
    np.testing.assert_array_equal(tracks[0].boxes_xywh[2], [12, 10, 20, 10])
    assert np.isnan(tracks[1].boxes_xywh[1]).all()
    pair = VideoPairSource(tracks[:1], frame_range=5).sample(np.random.default_rng(3))
    assert pair.search_mask is not None and pair.search_mask.sum() == 200


def test_crop_maps_box_like_the_tracker():
    img = np.zeros((300, 400, 3), np.uint8)
    box = np.array([150.0, 100.0, 40.0, 60.0])
    crop, cbox, _, _ = crop_one(np.random.default_rng(0), img, box, 255, 127, shift=0.0, scale=0.0, context=0.5)
    # Box centred in the crop, size scaled by 127 / s_z.
    s_z = np.sqrt((40 + 50) * (60 + 50))
    a = 127 / s_z
    np.testing.assert_allclose((cbox[:2] + cbox[2:]) / 2, [127.5, 127.5], atol=1e-9)
    np.testing.assert_allclose(cbox[2:] - cbox[:2], [40 * a, 60 * a], atol=1e-9)


def test_crop_reports_the_image_extent_and_flip_mirrors_it():
    img = np.full((300, 400, 3), 200, np.uint8)
    img[:20, 300:] = 0                                             # outside the crop; makes the mean fill < 200
    box = np.array([0.0, 220.0, 80.0, 80.0])                       # bottom-left corner: the crop is half padding
    crop, _, _, extent = crop_one(np.random.default_rng(0), img, box, 255, 127, shift=0.0, scale=0.0, context=0.5)
    x1, y1, x2, y2 = np.round(extent).astype(int)
    assert x1 > 0 and y2 < 255 and x2 > 255 and y1 < 0            # the image ends inside the crop, left and bottom
    inside = crop[max(y1, 0) + 2:min(y2, 255) - 2, max(x1, 0) + 2:min(x2, 255) - 2]
    assert inside.min() == 200                                     # the image's own pixels inside the extent
    assert crop[:, :max(x1 - 2, 0)].max() < 200 and crop[min(y2 + 2, 255):].max() < 200   # padding (mean fill) outside
    aug = AugmentConfig(color=0, blur=0, flip=1.0, search_shift=0.0, search_scale=0.0)
    pair = FramePair(img, box, img, box, None)
    out = crop_pair(np.random.default_rng(0), pair, aug)
    np.testing.assert_allclose(out["search_image_box"], [255 - extent[2], extent[1], 255 - extent[0], extent[3]],
                               atol=1e-9)


def test_crop_pair_mask_follows_object():
    img = np.zeros((200, 200, 3), np.uint8)
    img[80:120, 60:100] = 255
    mask = np.zeros((200, 200), np.uint8)
    mask[80:120, 60:100] = 1
    from siamattn_ros.data.pairs import FramePair
    pair = FramePair(img, np.array([60.0, 80, 40, 40]), img, np.array([60.0, 80, 40, 40]), mask)
    out = crop_pair(np.random.default_rng(1), pair, AugmentConfig(color=0, blur=0))
    x1, y1, x2, y2 = out["search_box"]
    ys, xs = np.nonzero(out["search_mask"])
    assert abs(xs.min() - x1) <= 1.5 and abs(xs.max() + 1 - x2) <= 1.5
    assert abs(ys.min() - y1) <= 1.5 and abs(ys.max() + 1 - y2) <= 1.5
    # The white square is where the mask is.
    assert out["search"][ys, xs].mean() > 200


def test_annotation_only_folder_reads_frames_from_named_footage(tmp_path):
    from siamattn_ros.data.seqio import read_sequence

    video = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(6):
        w.write(np.full((48, 64, 3), 40 * i, np.uint8))
    w.release()
    seq = tmp_path / "clip_target"
    seq.mkdir()
    (seq / "groundtruth.txt").write_text("1,2,10,10\n2,2,10,10\nnan,nan,nan,nan\n")
    (seq / "meta_info.ini").write_text(f"[METAINFO]\nsource: {video} (test clip)\nframes: 2-4 (0-based)\n")
    s = read_sequence(seq)
    assert len(s.frames) == 3 and s.frames[0].shape == (48, 64, 3)
    # Frame 2 of the clip has grey level 80 (MJPG is lossy: compare the mean).
    assert abs(float(s.frames[0].mean()) - 80) < 6 and abs(float(s.frames[2].mean()) - 160) < 6
    np.testing.assert_array_equal(s.visible, [True, True, False])
