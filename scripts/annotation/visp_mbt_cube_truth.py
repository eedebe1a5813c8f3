"""Model-based truth for data/annotations/visp_mbt_cube (ViSP-images/mbt/cube, a textured 8.4 cm cube).

Known geometry: the package ships the cube's CAD model (cube.cao: 8 corners, 0.084 m), the camera intrinsics
(cube.xml) and the cube's pose in the first frame (cube.0.pos: translation, theta-u rotation). Features
(goodFeaturesToTrack) on the visible faces are back-projected onto the faces with the current pose, tracked with
pyramidal Lucas-Kanade, and the pose of each frame is solved with RANSAC PnP from the tracked 2-D/3-D pairs (new
features are added every 10 frames). The box is the bounding box of the 8 projected corners (the silhouette of a
convex solid), clipped to the image; corners.txt keeps the projected corners.

    python scripts/annotation/visp_mbt_cube_truth.py data/annotations/visp_mbt_cube
"""
import glob
import sys
from pathlib import Path

import cv2
import numpy as np

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else 'data/annotations/visp_mbt_cube')
D = '/usr/share/visp-images-data/ViSP-images/mbt/'
fs = sorted(glob.glob(D + 'cube/*.pgm')); G=[cv2.imread(f,0) for f in fs]
K=np.array([[547.7367575,0,338.7036994],[0,542.0744058,234.5083345],[0,0,1]])
pos=[float(l.split()[0]) for l in open(D+'cube.0.pos') if l.strip()]
t=np.array(pos[:3]); rv=np.array(pos[3:6])
s=0.084
P=np.array([[0,0,0],[-s,0,0],[-s,s,0],[0,s,0],[0,0,s],[-s,0,s],[-s,s,s],[0,s,s]],float)
faces=[[0,4,5,1],[1,5,6,2],[6,7,3,2],[3,7,4,0],[0,1,2,3],[7,6,5,4]]
def proj(rv,t,X): return cv2.projectPoints(X,rv,t,K,None)[0].reshape(-1,2)
def visible_faces(rv,t):
    R=cv2.Rodrigues(rv)[0]; out=[]
    for f in faces:
        Xc=(R@P[f].T).T+t; n=np.cross(Xc[1]-Xc[0],Xc[2]-Xc[0]); c=Xc.mean(0)
        # a face is visible when it faces the camera (normal towards the origin)
        if np.dot(n,-c)*sgn>0: out.append(f)
    return out
# determine the outward-normal sign convention: the cube centre must be behind visible faces
R=cv2.Rodrigues(rv)[0]; cen=(R@P.mean(0))+t
sgn=1
tmp=[]
for f in faces:
    Xc=(R@P[f].T).T+t; n=np.cross(Xc[1]-Xc[0],Xc[2]-Xc[0])
    outward=np.dot(n,Xc.mean(0)-cen)>0
    tmp.append(outward)
sgn=1 if all(tmp) else (-1 if not any(tmp) else 0)
assert sgn == 1, 'cube.cao faces must all be ordered with outward normals'
def backproject(pts,rv,t):
    R=cv2.Rodrigues(rv)[0]; Kinv=np.linalg.inv(K); res=[]
    vf=visible_faces(rv,t)
    for p in pts:
        d=Kinv@np.array([p[0],p[1],1.0]); best=None
        for f in vf:
            Xc=(R@P[f].T).T+t; n=np.cross(Xc[1]-Xc[0],Xc[2]-Xc[0]); lam=np.dot(n,Xc[0])/np.dot(n,d)
            if lam<=0: continue
            X=lam*d; Xo=R.T@(X-t)
            if (Xo>=-s-1e-3).all() and (Xo<=s+1e-3).all() and ((Xo>-s-1e-3)&(Xo<1e-3)|(Xo<s+1e-3)&(Xo>-1e-3)).all():
                # inside the face polygon: check via point-in-polygon in image
                poly=proj(rv,t,P[f]).astype(np.float32)
                if cv2.pointPolygonTest(poly,(float(p[0]),float(p[1])),True)>3:
                    if best is None or lam<best[0]: best=(lam,Xo)
        res.append(None if best is None else best[1])
    return res
def feats(g,rv,t):
    m=np.zeros_like(g)
    for f in visible_faces(rv,t): cv2.fillConvexPoly(m,proj(rv,t,P[f]).astype(np.int32),255)
    m=cv2.erode(m,np.ones((7,7),np.uint8))
    p=cv2.goodFeaturesToTrack(g,300,0.01,5,mask=m)
    p=p.reshape(-1,2); X=backproject(p,rv,t)
    keep=[i for i,x in enumerate(X) if x is not None]
    return p[keep].astype(np.float32), np.array([X[i] for i in keep])
N=len(G); boxes=[]; poses=[]
img_pts,obj_pts=feats(G[0],rv,t)
for i in range(N):
    if i>0:
        q,st,_=cv2.calcOpticalFlowPyrLK(G[i-1],G[i],img_pts,None,winSize=(21,21),maxLevel=3)
        ok=st[:,0]==1; img_pts,obj_pts=q[ok],obj_pts[ok]
        okp,rv2,t2,inl=cv2.solvePnPRansac(obj_pts,img_pts,K,None,rv.copy(),t.copy(),True,200,2.0)
        rv,t=rv2.ravel(),t2.ravel()
        if inl is not None: img_pts,obj_pts=img_pts[inl[:,0]],obj_pts[inl[:,0]]
        if i%10==0 or len(img_pts)<60:
            a,b=feats(G[i],rv,t); img_pts=np.vstack([img_pts,a]); obj_pts=np.vstack([obj_pts,b])
    c=proj(rv,t,P); x0,y0=c.min(0); x1,y1=c.max(0)
    W,H=G[0].shape[1],G[0].shape[0]
    x0,y0,x1,y1=max(0,x0),max(0,y0),min(W,x1),min(H,y1)
    boxes.append((x0,y0,x1-x0,y1-y0)); poses.append(np.r_[rv,t])
corners = np.array([proj(p[:3], p[3:], P) for p in poses])
(OUT / 'groundtruth.txt').write_text(''.join(','.join(f'{v:.1f}' for v in b) + '\n' for b in boxes))
(OUT / 'absence.label').write_text('0\n' * len(boxes))
(OUT / 'corners.txt').write_text('# frame, then x,y of the 8 projected cube corners (cube.cao order)\n' + ''.join(
    f'{i},' + ','.join(f'{v:.1f}' for v in c.ravel()) + '\n' for i, c in enumerate(corners)))
