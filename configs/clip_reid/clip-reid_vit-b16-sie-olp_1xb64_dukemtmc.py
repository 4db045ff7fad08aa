# CLIP-ReID + SIE + OLP on CLIP ViT-B/16, DukeMTMC-reID (the official README's
# MODEL.SIE_CAMERA True MODEL.SIE_COE 1.0 MODEL.STRIDE_SIZE [12, 12]): a learned embedding of the
# 8 cameras added to the class token, and overlapping 16x16 patches at stride 12 (a 21x10 grid).
_base_ = ['./clip-reid_vit-b16_1xb64_dukemtmc.py']

model = dict(backbone=dict(patch_stride=12, sie_cameras=8, sie_coef=1.0))
