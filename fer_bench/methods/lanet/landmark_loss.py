"""LA-Net's landmark targets and loss.

Targets: the batch's landmarks (already moved by the engine's flip, crop and
resize) are mapped from the iBUG 68 layout to LA-Net's 19 points (or kept at
68), re-indexed on mirrored samples, and rendered as Gaussian heatmaps with a
weight map at a quarter of the input size (:mod:`fer_bench.landmarks`).

Loss: the **Adaptive Wing loss** (Wang et al., ICCV 2019) with the official
alpha = 2.1, omega = 14, epsilon = 1, theta = 0.5, per pixel, multiplied by the
weight map and averaged over batch x landmarks x pixels. Its exponent
``alpha - h`` makes errors on the foreground (h near 1) behave like L1 and on the
background (h near 0) like a steeper, near-quadratic loss around zero.

Flip (choice): after a horizontal mirror the point that was the image-left outer
brow sits on the image right. The official code's flip moves the points but
keeps their indices, so that point stays in channel 0, and a channel means one
image side on unmirrored samples and the other on mirrored ones. By default the
symmetric channels are swapped, which is what the geometry means: channel 0 is
always the outer end of the image-left brow. ``--set swap_flipped_landmarks=false`` gives
the official behaviour.
"""

from __future__ import annotations


import torch

from ...landmarks import heatmap_targets, map_68_to_19, swap_mirrored

AWING_ALPHA, AWING_OMEGA, AWING_EPSILON, AWING_THETA = 2.1, 14.0, 1.0, 0.5


def landmark_points(landmarks: torch.Tensor, flipped: torch.Tensor, num_landmarks: int,
                    swap_flipped: bool) -> torch.Tensor:
    """The ``(B, num_landmarks, 2)`` points whose heatmaps the landmark branch must predict.

    Args:
        landmarks: ``(B, 68, 2)`` iBUG points in pixels of the augmented images.
        flipped: bool ``(B,)``, the mirrored samples.
        num_landmarks: 19 (LA-Net's layout) or 68.
        swap_flipped: re-index mirrored samples' channels (default) or keep the
            official code's un-swapped channels.
    """
    if num_landmarks == 19:
        points = map_68_to_19(landmarks) if landmarks.shape[-2] == 68 else landmarks
    elif num_landmarks == 68:
        points = landmarks
    else:
        raise ValueError(f"num_landmarks must be 19 or 68, got {num_landmarks}")
    if points.shape[-2] != num_landmarks:
        raise ValueError(f"cannot make {num_landmarks} landmarks from {landmarks.shape[-2]} points")
    return swap_mirrored(points, flipped) if swap_flipped else points


def adaptive_wing_loss(pred: torch.Tensor, target: torch.Tensor, alpha: float = AWING_ALPHA,
                       omega: float = AWING_OMEGA, epsilon: float = AWING_EPSILON,
                       theta: float = AWING_THETA) -> torch.Tensor:
    """Element-wise Adaptive Wing loss of raw heatmaps ``pred`` against targets in [0, 1]."""
    d = (target - pred).abs()
    power = alpha - target
    small = omega * torch.log1p((d / epsilon) ** power)
    ratio = theta / epsilon
    a = omega * (1 / (1 + ratio ** power)) * power * ratio ** (power - 1) / epsilon
    c = theta * a - omega * torch.log1p(ratio ** power)
    return torch.where(d < theta, small, a * d - c)


def landmark_loss(pred: torch.Tensor, points: torch.Tensor, image_size: int,
                  sigma: float, convention: str = "centre") -> torch.Tensor:
    """Weighted AWing loss of predicted heatmaps ``(B, K, h, h)`` against the points' targets
    (peaks placed by ``convention``, see :mod:`fer_bench.landmarks.heatmaps`)."""
    target, weight = heatmap_targets(points, image_size, pred.shape[-1], sigma, convention)
    return (weight * adaptive_wing_loss(pred.float(), target)).mean()


__all__ = ["adaptive_wing_loss", "landmark_loss", "landmark_points"]
