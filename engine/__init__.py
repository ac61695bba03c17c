"""SR Studio's engine: networks, checkpoints, inference, metrics, batch and training. No Qt.

The app and any other front end use what this module exports, and nothing deeper.
Tensor contract for every network: float32 RGB in [0, 1], NCHW (engine/archs/base.py)."""

from __future__ import annotations

# first, before torch is imported: it applies the malloc settings (engine.inference.allocator)
from engine.inference.allocator import tune as tune_allocator  # isort: skip
from engine.inference.allocator import trim as trim_allocator  # isort: skip
from engine.archs.registry import (
    FAMILIES,
    get_family,
    model_names,
    parse_model_name,
    variant_note,
)
from engine.batch import (
    DEFAULT_TEMPLATE,
    PROGRESS_STEPS,
    BatchJob,
    BatchReport,
    FileRecord,
    collect_inputs,
    eta_seconds,
    run_batch,
)
from engine.checkpoints import (
    bicubic,
    build_untrained,
    count_params,
    load_model,
    read_state_dict,
    save_checkpoint,
)
from engine.cli import main as run_cli
from engine.descriptor import ModelDescriptor
from engine.downloads import download_release, import_weights
from engine.errors import Cancelled, CheckpointError, ImageError, SRStudioError
from engine.estimate import LONG_RUN_SECONDS, estimate_seconds
from engine.evaluate import EvalResult, evaluate, load_pairs, make_lr, score
from engine.export import ExportResult, export_onnx
from engine.imaging.color import rgb_to_y, tensor_to_uint8, uint8_to_tensor
from engine.imaging.heatmap import difference_map
from engine.imaging.input_quality import InputQuality, describe_format
from engine.imaging.io import (
    FORMAT_EXTENSIONS,
    READ_EXTENSIONS,
    ImageData,
    read_image,
    write_image,
)
from engine.imaging.output_store import OutputStore
from engine.imaging.resize import imresize
from engine.imaging.safe_open import image_size
from engine.inference.backends import BACKENDS, openvino_missing
from engine.inference.cleanup_choice import (
    CLEANUP_MODES,
    CleanupDecision,
    CleanupReason,
    decide_auto,
    measure_input,
)
from engine.inference.cleanup_choice import short_note as cleanup_note
from engine.inference.devices import DeviceInfo, free_memory_bytes, list_devices
from engine.inference.openvino_backend import available as openvino_available
from engine.inference.openvino_backend import native_bf16
from engine.inference.upscaler import PRECISIONS, UpscaleOptions, Upscaler
from engine.library import (
    BrokenWeights,
    WeightsEntry,
    best_weights,
    installed_weights,
    recommended_weights,
    scan_weights,
    user_dir,
)
from engine.metrics import psnr, score_rows, ssim
from engine.params import param_count
from engine.progress import Eta, PassProgress, RunOutcome, counting_passes, format_seconds
from engine.published import published_psnr
from engine.quality import Set5Figure, expected_set5, quality_fraction
from engine.releases import (
    RELEASES,
    Release,
    find_releases,
    format_size,
    recommended_releases,
)
from engine.training import (
    DEGRADATIONS,
    SCHEDULES,
    LogEvent,
    LossEvent,
    TrainConfig,
    TrainResult,
    ValidationEvent,
    cpu_native_bf16,
    train,
)

__version__ = "0.1.0"

__all__ = [
    "tune_allocator",
    "trim_allocator",
    "CLEANUP_MODES",
    "CleanupDecision",
    "CleanupReason",
    "OutputStore",
    "describe_format",
    "InputQuality",
    "measure_input",
    "decide_auto",
    "cleanup_note",
    "DEFAULT_TEMPLATE",
    "DEGRADATIONS",
    "FAMILIES",
    "FORMAT_EXTENSIONS",
    "LONG_RUN_SECONDS",
    "PRECISIONS",
    "BACKENDS",
    "openvino_missing",
    "PROGRESS_STEPS",
    "READ_EXTENSIONS",
    "RELEASES",
    "SCHEDULES",
    "BatchJob",
    "BatchReport",
    "BrokenWeights",
    "Cancelled",
    "CheckpointError",
    "DeviceInfo",
    "Eta",
    "EvalResult",
    "ExportResult",
    "FileRecord",
    "ImageData",
    "ImageError",
    "LogEvent",
    "LossEvent",
    "ModelDescriptor",
    "PassProgress",
    "Release",
    "RunOutcome",
    "SRStudioError",
    "Set5Figure",
    "TrainConfig",
    "TrainResult",
    "UpscaleOptions",
    "Upscaler",
    "ValidationEvent",
    "WeightsEntry",
    "best_weights",
    "bicubic",
    "build_untrained",
    "collect_inputs",
    "count_params",
    "cpu_native_bf16",
    "counting_passes",
    "difference_map",
    "download_release",
    "estimate_seconds",
    "eta_seconds",
    "evaluate",
    "expected_set5",
    "export_onnx",
    "find_releases",
    "format_seconds",
    "format_size",
    "get_family",
    "image_size",
    "imresize",
    "import_weights",
    "installed_weights",
    "list_devices",
    "openvino_available",
    "free_memory_bytes",
    "native_bf16",
    "load_model",
    "load_pairs",
    "make_lr",
    "model_names",
    "param_count",
    "parse_model_name",
    "psnr",
    "recommended_releases",
    "recommended_weights",
    "published_psnr",
    "quality_fraction",
    "read_image",
    "read_state_dict",
    "rgb_to_y",
    "run_batch",
    "run_cli",
    "scan_weights",
    "save_checkpoint",
    "score",
    "score_rows",
    "ssim",
    "tensor_to_uint8",
    "train",
    "uint8_to_tensor",
    "user_dir",
    "variant_note",
    "write_image",
]
