"""Derives data/annotations/visp_mire2 (groundtruth.txt, corners.txt) from the ViSP mire-2 frames.

The target is a planar black square with four small white dots near its corners and one large dot in the middle.
Reference frame 150: the square's corners were read by hand on a 4x zoom with a pixel grid; the dots' centroids are
measured. Every other frame (going forward and backward from 150): the homography is predicted from the previous
frame by Lucas-Kanade flow of corner features inside the square (RANSAC), then replaced by the homography fitted to
the five dot centroids found near their predicted positions (kept only if it moves no corner by more than 15 px).
The box is the axis-aligned bounding box of the four mapped corners, clipped to the image.

    python scripts/annotation/visp_mire2_truth.py data/annotations/visp_mire2
"""
import sys
from pathlib import Path

import cv2
import numpy as np

V = Path('/usr/share/visp-images-data/ViSP-images/mire-2')
OUT = Path(sys.argv[1] if len(sys.argv) > 1 else 'data/annotations/visp_mire2')
fs = sorted(str(p) for p in V.glob('*.pgm'))
G = [cv2.imread(f, 0) for f in fs]
REF=150; N=len(G); Hh,W=G[0].shape
ref_c=np.array([[68,130.5],[255,134],[294,258.5],[69,259.5]],np.float32)
ref_d=np.array([[102.19,147.86],[231,154],[253.67,238.33],[107.89,237.82],[174.88,192.39]],np.float32)
def tf(H,p): return cv2.perspectiveTransform(p[None].astype(np.float32),H)[0]
def refine_dot(g,p,r):
    x,y=int(round(p[0])),int(round(p[1]))
    x0,y0,x1,y1=x-r,y-r,x+r+1,y+r+1
    if x0<1 or y0<1 or x1>W-1 or y1>Hh-1: return None
    win=cv2.GaussianBlur(g,(3,3),0)[y0:y1,x0:x1].astype(np.float32)
    lo,hi=np.percentile(win,10),np.percentile(win,99)
    if hi-lo<60: return None
    m=(win>(lo+hi)/2).astype(np.uint8)
    n,lab,st,cen=cv2.connectedComponentsWithStats(m,8)
    best=None
    for k in range(1,n):
        bx,by,bw,bh,a=st[k]
        if bx==0 or by==0 or bx+bw>=m.shape[1] or by+bh>=m.shape[0]: continue  # touches window: not an isolated dot
        d=np.hypot(cen[k][0]-r,cen[k][1]-r)
        if best is None or d<best[0]: best=(d,cen[k],a)
    if best is None or best[0]>r*0.6: return None
    return np.array([x0+best[1][0],y0+best[1][1]])
for k in range(5):
    q=refine_dot(G[REF],ref_d[k],16 if k<4 else 40)
    print('ref dot',k,ref_d[k],q)
    if q is not None: ref_d[k]=q
def lk(i,j,poly):
    m=np.zeros_like(G[i]); cv2.fillConvexPoly(m,poly.astype(np.int32),255)
    m=cv2.dilate(m,np.ones((9,9),np.uint8))
    p=cv2.goodFeaturesToTrack(G[i],400,0.01,5,mask=m)
    q,st,_=cv2.calcOpticalFlowPyrLK(G[i],G[j],p,None,winSize=(21,21),maxLevel=3)
    ok=st[:,0]==1
    H,inl=cv2.findHomography(p[ok],q[ok],cv2.RANSAC,2.0)
    return H
Hs=[None]*N; nd=np.zeros(N,int)
def step(Hprev,i,j):
    H=lk(i,j,tf(Hprev,ref_c))@Hprev
    for it in range(2):
        pred=tf(H,ref_d)
        spacing=np.linalg.norm(pred[0]-pred[2])
        found=[]; 
        for k in range(5):
            r=int(max(8,0.12*spacing)) if k<4 else int(max(14,0.3*spacing))
            q=refine_dot(G[j],pred[k],r)
            if q is not None: found.append((k,q))
        if len([k for k,_ in found if k<4])>=4 or len(found)>=4:
            src=np.array([ref_d[k] for k,_ in found]); dst=np.array([q for _,q in found])
            H2,_=cv2.findHomography(src,dst,0)
            if H2 is not None and np.abs(tf(H2,ref_c)-tf(H,ref_c)).max()<15: H=H2
    return H,len(found)
Hs[REF]=np.eye(3); nd[REF]=5
for j in range(REF+1,N): Hs[j],nd[j]=step(Hs[j-1],j-1,j)
for j in range(REF-1,-1,-1): Hs[j],nd[j]=step(Hs[j+1],j+1,j)
C=np.array([tf(H,ref_c) for H in Hs])
x0, x1 = np.clip(C[:, :, 0].min(1), 0, W), np.clip(C[:, :, 0].max(1), 0, W)
y0, y1 = np.clip(C[:, :, 1].min(1), 0, Hh), np.clip(C[:, :, 1].max(1), 0, Hh)
B=np.stack([x0,y0,x1-x0,y1-y0],1)
(OUT / 'groundtruth.txt').write_text(''.join(','.join(f'{v:.1f}' for v in b) + '\n' for b in B))
header = '# frame,x_tl,y_tl,x_tr,y_tr,x_br,y_br,x_bl,y_bl  (corners of the black square, may lie outside the image)\n'
rows = [f'{i},' + ','.join(f'{v:.1f}' for v in c.ravel()) + '\n' for i, c in enumerate(C)]
(OUT / 'corners.txt').write_text(header + ''.join(rows))
print('frames with all 5 dots found:', int((nd == 5).sum()), 'of', N)
